package bench

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestReplaceSection(t *testing.T) {
	tests := []struct {
		name, doc, body, want string
		wantErr               error
	}{
		{
			name: "replaces only between the markers",
			doc:  "# B\n\n## Other\nkeep\n\n## Language server\nprose\n" + BeginMarker + "\nold\nold\n" + EndMarker + "\nafter\n",
			body: "\nnew table\n\n",
			want: "# B\n\n## Other\nkeep\n\n## Language server\nprose\n" + BeginMarker + "\nnew table\n" + EndMarker + "\nafter\n",
		},
		{name: "no markers", doc: "# B\n", wantErr: ErrNoSection},
		{name: "end before begin", doc: EndMarker + "\n" + BeginMarker + "\n", wantErr: ErrNoSection},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReplaceSection([]byte(tt.doc), tt.body)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if string(got) != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestMarkdownVerdicts(t *testing.T) {
	peer := &Target{Name: "tabby-agent 1.5.0", Method: MethodCompletion, Samples: Samples{Miss: ms(10, 10, 10), Hit: ms(2, 2, 2), Iterations: 3}}
	fast := &Target{Name: "codingplan", Method: MethodInlineCompletion, Samples: Samples{Miss: ms(2, 2, 2), Hit: ms(1, 1, 1), Iterations: 3}}
	slow := &Target{Name: "codingplan", Method: MethodCompletion, Samples: Samples{Miss: ms(3, 3, 3), Hit: ms(1, 1, 1), Iterations: 3}}
	r := &Report{
		Config:  Config{Rounds: 1, PerRound: 3},
		Targets: []*Target{peer, fast, slow},
		Memory: []MemoryResult{
			{Name: "codingplan-lsp", Docs: 100, DocBytes: 10 << 20, Loaded: Memory{RSS: 29 << 20}},
		},
	}
	md := r.Markdown("test machine", "cmd", time.Unix(0, 0))
	for _, want := range []string{
		"| codingplan | inlineCompletion | miss (new) | 3 | 2.00 |",
		"inlineCompletion, cache miss: p50 2.00 ms vs tabby-agent's 10.0 ms = 5.0x faster: meets the 5x target.",
		"completion, cache miss: p50 3.00 ms vs tabby-agent's 10.0 ms = 3.3x faster: MISSES the 5x target.",
		"RSS with 100 documents (10.0 MiB) open: 29.0 MiB: meets the 30 MiB target.",
		"Command: `cmd`",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

func TestMarkdownOwnShare(t *testing.T) {
	ours := &Target{Name: "codingplan", Method: MethodInlineCompletion, Samples: Samples{Miss: ms(2, 2, 2), Hit: ms(1, 1, 1), Iterations: 3}}
	r := &Report{
		Config:  Config{Rounds: 1, PerRound: 3},
		Targets: []*Target{ours},
		Probes: []*Probe{
			{Name: "provider alone", Samples: ms(1, 1, 1)},
			{Name: "backend", Role: RoleBackend, Samples: ms(1, 1, 1)},
			{Name: "bare", Role: RoleStdio, Samples: []time.Duration{250 * time.Microsecond}},
		},
	}
	md := r.Markdown("test machine", "cmd", time.Unix(0, 0))
	if want := "- codingplan inlineCompletion: 2.00 - 1.00 - 0.250 = 0.750 ms"; !strings.Contains(md, want) {
		t.Errorf("report lacks %q:\n%s", want, md)
	}
}
