package bench

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestCountItems(t *testing.T) {
	tests := []struct {
		raw     string
		want    int
		wantErr bool
	}{
		{"null", 0, false},
		{"", 0, false},
		{"[]", 0, false},
		{`[{"label":"a"},{"label":"b"}]`, 2, false},
		{`{"isIncomplete":true,"items":[{"label":"a"}]}`, 1, false},
		{`{"items":[{"insertText":"x"}]}`, 1, false},
		{`{"items":null}`, 0, false},
		{`[1,`, 0, true},
		{`"text"`, 0, true},
	}
	for _, tt := range tests {
		got, err := CountItems(json.RawMessage(tt.raw))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("CountItems(%s) = %d, %v; want %d, error %v", tt.raw, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestDocChangesReplay checks that the incremental changes a Doc sends, applied by a server,
// give the text the Doc holds, and that every context is new.
func TestDocChangesReplay(t *testing.T) {
	c, s := startFake(t, ClientOptions{})
	d := NewDoc("file:///w/a.go")
	if err := d.Open(c); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i := range 5 {
		pos, err := d.NewContext(c)
		if err != nil {
			t.Fatal(err)
		}
		// A request after the change is answered after the server applied it.
		if _, err := c.Call(testCtx(t), MethodCompletion, RequestParams(MethodCompletion, d.URI, pos)); err != nil {
			t.Fatal(err)
		}
		if got, want := s.doc(d.URI), d.Text(); got != want {
			t.Fatalf("after change %d the server has\n%s\nwant\n%s", i, got, want)
		}
		lines := strings.Split(d.Text(), "\n")
		if pos.Character != len(lines[pos.Line]) {
			t.Errorf("cursor %+v is not at the end of its line %q", pos, lines[pos.Line])
		}
		prefix := strings.Join(lines[:pos.Line], "\n") + lines[pos.Line]
		if seen[prefix] {
			t.Errorf("change %d repeats a context", i)
		}
		seen[prefix] = true
	}
}

func TestTargetMeasure(t *testing.T) {
	c, _ := startFake(t, ClientOptions{})
	var upstream int64
	tg := &Target{Name: "fake", Server: &Server{Client: c}, Doc: NewDoc("file:///w/b.go"), Method: MethodCompletion,
		Upstream: func() int64 { upstream++; return upstream }}
	if err := tg.Doc.Open(c); err != nil {
		t.Fatal(err)
	}
	if err := tg.WaitUseful(testCtx(t), time.Second); err != nil {
		t.Fatal(err)
	}
	if err := tg.Measure(testCtx(t), 3, time.Second, false); err != nil {
		t.Fatal(err)
	}
	if len(tg.Samples.Miss) != 0 {
		t.Errorf("warm-up recorded %d samples", len(tg.Samples.Miss))
	}
	if err := tg.Measure(testCtx(t), 4, time.Second, true); err != nil {
		t.Fatal(err)
	}
	s := tg.Samples
	if len(s.Miss) != 4 || len(s.Hit) != 4 || s.Errors != 0 || s.Empty != 0 {
		t.Errorf("samples: %d misses, %d hits, %d errors, %d empty; want 4, 4, 0, 0", len(s.Miss), len(s.Hit), s.Errors, s.Empty)
	}
	// The counter advances by one per read: each request's delta is 1.
	if s.UpstreamMis != 4 || s.UpstreamHit != 4 {
		t.Errorf("upstream deltas %d, %d; want 4, 4", s.UpstreamMis, s.UpstreamHit)
	}
}

func TestMemoryDocs(t *testing.T) {
	docs := MemoryDocs("file:///w", 10, 100000)
	total := 0
	seen := map[string]bool{}
	for _, d := range docs {
		total += len(d.Text())
		if seen[d.URI] {
			t.Errorf("duplicate uri %s", d.URI)
		}
		seen[d.URI] = true
	}
	if total != 100000 {
		t.Errorf("total size %d, want 100000", total)
	}
	if docs[0].Text() == docs[1].Text() {
		t.Error("documents are not distinct")
	}
}
