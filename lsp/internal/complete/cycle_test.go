package complete

import (
	"context"
	"testing"

	"github.com/codingplan/codingplan/lsp/internal/remote"
	wire "github.com/codingplan/codingplan/shared"
)

// The websocket client streams several suggestions.
var _ eachStreamer = (*remote.Client)(nil)

// eachFake is a Streamer and an eachStreamer: Stream answers one suggestion, StreamEach streams
// deltas given as (index, text) pairs.
type eachFake struct {
	fakeStreamer
	deltas []indexed
	reqs   []wire.ClientFrame
}

type indexed struct {
	i    int
	text string
}

func (f *eachFake) StreamEach(ctx context.Context, req wire.ClientFrame, onDelta func(int, []byte)) (wire.ServerFrame, error) {
	f.reqs = append(f.reqs, req)
	for _, d := range f.deltas {
		onDelta(d.i, []byte(d.text))
		if ctx.Err() != nil {
			return wire.ServerFrame{}, ctx.Err()
		}
	}
	return wire.ServerFrame{Type: wire.TypeDone, FinishReason: wire.FinishStop}, nil
}

func TestCycling(t *testing.T) {
	interleaved := []indexed{{0, "a + b"}, {2, "b + a"}, {1, "a +"}, {1, " b"}, {2, "\nnever"}, {0, "\n"}, {1, "\n"}}
	tests := []struct {
		name        string
		trigger     Trigger
		suggestions int
		deltas      []indexed
		cached      string // an earlier automatic answer for the same context
		want        []string
		wantN       int // the n the request asked for; 0: no StreamEach request
	}{
		{"typing asks for one", Automatic, 3, interleaved, "", []string{"x"}, 0},
		{"invoked asks for three, duplicates dropped", Invoked, 3, interleaved, "", []string{"a + b", "b + a"}, 3},
		{"setting of one", Invoked, 1, interleaved, "", []string{"x"}, 0},
		{"two", Invoked, 2, []indexed{{0, "p()"}, {1, "q()"}}, "", []string{"p()", "q()"}, 2},
		{"empty ones dropped", Invoked, 3, []indexed{{1, "q()"}}, "", []string{"q()"}, 3},
		{"the shown one first", Invoked, 3, []indexed{{0, "p()"}, {1, "q()"}, {2, "x"}}, "x", []string{"x", "p()", "q()"}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := &eachFake{fakeStreamer: fakeStreamer{stream: answers(tt.cached + "x")}, deltas: tt.deltas}
			if tt.cached != "" {
				fs.stream = answers(tt.cached)
			}
			e := New(Config{}, fs, nil)
			in := input(t, "func f() int {\n\treturn │\n}\n")
			in.Settings.Suggestions = tt.suggestions
			if tt.cached != "" {
				if _, err := e.Complete(context.Background(), in); err != nil {
					t.Fatal(err)
				}
			}
			in.Trigger = tt.trigger
			res, err := e.Complete(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			ids := map[string]bool{}
			for _, it := range res.Items {
				got = append(got, it.InsertText)
				ids[it.ID] = true
			}
			if len(got) != len(tt.want) || len(ids) != len(got) {
				t.Fatalf("items %q (ids %v), want %q", got, ids, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("items %q, want %q", got, tt.want)
				}
			}
			switch {
			case tt.wantN == 0 && len(fs.reqs) != 0:
				t.Errorf("asked for several: %+v", fs.reqs)
			case tt.wantN > 0 && (len(fs.reqs) != 1 || fs.reqs[0].Completion.N != tt.wantN):
				t.Errorf("requests %+v, want one with n=%d", fs.reqs, tt.wantN)
			}
		})
	}
}
