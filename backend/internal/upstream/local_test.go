package upstream

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/codingplan/codingplan/backend/internal/ngram"
	wire "github.com/codingplan/codingplan/shared"
)

const localCorpus = `package corpus

import "fmt"

func Check(path string) error {
	if err := load(path); err != nil {
		return fmt.Errorf("load %s: %w", path, err)
	}
	return nil
}

func Check2(path string) error {
	if err := load(path); err != nil {
		return fmt.Errorf("load %s: %w", path, err)
	}
	return nil
}
`

// localModel returns a local provider config and an n-gram model trained on localCorpus.
func localModel(t *testing.T) (ModelConfig, *ngram.Model) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "corpus.go"), []byte(localCorpus), 0o644); err != nil {
		t.Fatal(err)
	}
	mc := ModelConfig{Name: "local", Provider: KindLocal, Options: map[string]string{
		LocalCorpusDirs: dir, LocalNoGoroot: "true", LocalMinCount: "1", LocalVocabMinCount: "1",
		LocalHoldOutPercent: "-1",
	}}
	cfg, err := LocalConfig(mc, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m, err := ngram.Open(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return mc, m
}

func completionRequest(prefix string) *Request {
	return &Request{Op: wire.OpCompletion, Model: "local", Completion: &wire.Completion{
		Prefix: wire.Text(prefix), Language: "go",
	}}
}

const localPrefix = "package x\n\nimport \"fmt\"\n\nfunc f(path string) error {\n\tif err := load(path); err != nil {\n\t\treturn "

func TestLocalStream(t *testing.T) {
	mc, m := localModel(t)
	p := NewLocal(mc, m)
	tests := []struct {
		name      string
		stop      []wire.Text
		maxTokens int
		want      string
		finish    string
	}{
		{"whole line", nil, 0, `fmt.Errorf("load %s: %w", path, err)`, wire.FinishStop},
		{"stop sequence", []wire.Text{"%s"}, 0, `fmt.Errorf("load `, wire.FinishStop},
		{"stop sequence split over tokens", []wire.Text{"(\"lo"}, 0, `fmt.Errorf`, wire.FinishStop},
		{"max tokens", nil, 3, `fmt.Errorf`, wire.FinishLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := completionRequest(localPrefix)
			req.Stop, req.MaxTokens = tt.stop, tt.maxTokens
			var got strings.Builder
			res, err := p.Stream(t.Context(), req, func(_ int, b []byte) error { got.Write(b); return nil })
			if err != nil {
				t.Fatalf("Stream: %v", err)
			}
			if got.String() != tt.want || res.FinishReason != tt.finish {
				t.Errorf("got %q (%s), want %q (%s)", got.String(), res.FinishReason, tt.want, tt.finish)
			}
			if res.Usage.PromptTokens == 0 || res.Usage.CompletionTokens == 0 {
				t.Errorf("usage %+v", res.Usage)
			}
		})
	}
}

func TestLocalStreamErrors(t *testing.T) {
	mc, m := localModel(t)
	p := NewLocal(mc, m)

	edit := &Request{Op: wire.OpEdit, Edit: &wire.Edit{Instruction: "x", Selection: "y"}}
	if _, err := p.Stream(t.Context(), edit, func(int, []byte) error { return nil }); !errors.Is(err, ErrFailed) {
		t.Errorf("edit: got %v, want ErrFailed", err)
	}

	gone := errors.New("client gone")
	if _, err := p.Stream(t.Context(), completionRequest(localPrefix), func(int, []byte) error { return gone }); err != gone {
		t.Errorf("sink error: got %v, want it unwrapped", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	pieces := 0
	_, err := p.Stream(ctx, completionRequest(localPrefix), func(_ int, b []byte) error {
		if len(b) > 0 { // not a flush
			pieces++
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || pieces != 1 {
		t.Errorf("cancel: got %v after %d pieces, want context.Canceled after 1", err, pieces)
	}
}

func TestStopFilter(t *testing.T) {
	tests := []struct {
		name   string
		stops  []string
		pieces []string
		want   []string // what the sink saw, piece by piece
		hit    bool
	}{
		{"no stops", nil, []string{"ab", "cd"}, []string{"ab", "cd"}, false},
		{"no match", []string{"xyz"}, []string{"ab", "cx", "d"}, []string{"ab", "c", "xd"}, false},
		{"match in one piece", []string{"\n\n"}, []string{"a\n\nb"}, []string{"a"}, true},
		{"match across pieces", []string{"END"}, []string{"aE", "N", "Dzz"}, []string{"a"}, true},
		{"earliest of two", []string{"cd", "b"}, []string{"abcd"}, []string{"a"}, true},
		{"match at start", []string{"a"}, []string{"ab"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			var stops []wire.Text
			for _, s := range tt.stops {
				stops = append(stops, wire.Text(s))
			}
			f := newStopFilter(func(_ int, b []byte) error {
				if len(b) > 0 { // an empty piece is a flush
					got = append(got, string(b))
				}
				return nil
			}, stops, nil)
			hit := false
			for _, p := range tt.pieces {
				if err := f.write([]byte(p)); err != nil {
					if !errors.Is(err, errStopSequence) {
						t.Fatal(err)
					}
					hit = true
					break
				}
			}
			if !hit {
				if err := f.flush(); err != nil {
					t.Fatal(err)
				}
			}
			if !slices.Equal(got, tt.want) || hit != tt.hit {
				t.Errorf("got %q (stopped %v), want %q (stopped %v)", got, hit, tt.want, tt.hit)
			}
		})
	}
}

func TestLocalConfig(t *testing.T) {
	sep := string(filepath.ListSeparator)
	mc := ModelConfig{Name: "local", Provider: KindLocal, Options: map[string]string{
		LocalCorpusDirs: "/a" + sep + " /b " + sep, LocalNoGoroot: "true", LocalOrder: "4", LocalMinCount: "3",
		LocalMaxCorpusBytes: "1000", LocalMinTokenProb: "0.1",
	}}
	got, err := LocalConfig(mc, "/state")
	if err != nil {
		t.Fatal(err)
	}
	want := ngram.Config{
		StateDir: "/state", CorpusDirs: []string{"/a", "/b"}, NoGoroot: true, Order: 4, MinCount: 3,
		MaxCorpusBytes: 1000, MinTokenProb: 0.1,
	}
	if !slices.Equal(got.CorpusDirs, want.CorpusDirs) {
		t.Errorf("corpus dirs %q, want %q", got.CorpusDirs, want.CorpusDirs)
	}
	got.CorpusDirs, want.CorpusDirs = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}

	mc.Options = map[string]string{"ordr": "4", LocalNoGoroot: "maybe"}
	_, err = LocalConfig(mc, "")
	for _, s := range []string{`"ordr"`, `"no_goroot"`, "state dir"} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("error %v does not mention %s", err, s)
		}
	}
}

func TestLocalFactoryShares(t *testing.T) {
	mc, _ := localModel(t)
	f := LocalFactory(t.Context(), t.TempDir())
	env := Env{Log: slog.New(slog.DiscardHandler)}
	a, err := f(mc, env)
	if err != nil {
		t.Fatal(err)
	}
	mc.Name = "other"
	b, err := f(mc, env)
	if err != nil {
		t.Fatal(err)
	}
	if a.(*localProvider).ngram != b.(*localProvider).ngram {
		t.Error("two local models with the same settings opened two n-gram models")
	}
}
