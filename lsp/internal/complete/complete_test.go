package complete

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/codingplan/codingplan/lsp/internal/config"
	"github.com/codingplan/codingplan/lsp/internal/remote"
	wire "github.com/codingplan/codingplan/shared"
)

// The websocket client is the engine's Streamer.
var _ Streamer = (*remote.Client)(nil)

// fakeStreamer is a Streamer whose behaviour each test sets.
type fakeStreamer struct {
	stream func(ctx context.Context, req wire.ClientFrame, onDelta func([]byte)) (wire.ServerFrame, error)
	calls  atomic.Int64
	mu     sync.Mutex
	last   wire.ClientFrame
}

func (f *fakeStreamer) Stream(ctx context.Context, req wire.ClientFrame, onDelta func([]byte)) (wire.ServerFrame, error) {
	f.calls.Add(1)
	f.mu.Lock()
	f.last = req
	f.mu.Unlock()
	return f.stream(ctx, req, onDelta)
}

func (f *fakeStreamer) request() wire.ClientFrame {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

// answers streams text in the given deltas, then done.
func answers(deltas ...string) func(context.Context, wire.ClientFrame, func([]byte)) (wire.ServerFrame, error) {
	return func(ctx context.Context, req wire.ClientFrame, onDelta func([]byte)) (wire.ServerFrame, error) {
		for _, d := range deltas {
			onDelta([]byte(d))
			if ctx.Err() != nil {
				return wire.ServerFrame{}, ctx.Err()
			}
		}
		return wire.ServerFrame{Type: wire.TypeDone, FinishReason: wire.FinishStop}, nil
	}
}

func settings() config.Settings {
	s := config.Default()
	s.DebounceMS = 0
	return s
}

// input builds a request for doc, whose cursor is marked.
func input(t testing.TB, doc string) Input {
	t.Helper()
	p, s := split(t, doc)
	return Input{DocKey: "file:///w/main.go", Text: p + s, Offset: len(p), Language: "go", RelPath: "main.go", Settings: settings()}
}

func itemText(t *testing.T, r Result) string {
	t.Helper()
	if len(r.Items) != 1 {
		t.Fatalf("got %d items, want 1", len(r.Items))
	}
	return r.Items[0].InsertText
}

func TestCompleteBuildsTheRequest(t *testing.T) {
	fs := &fakeStreamer{stream: answers("compute(", "a, b)\nignored")}
	e := New(Config{}, fs, nil)
	in := input(t, "package main\n\nfunc f() {\n\tx := │\n}\n")
	in.Settings.Model = "fast"
	in.Settings.MaxTokens = 64
	r, err := e.Complete(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.Items[0], (Item{InsertText: "compute(a, b)", Start: in.Offset, End: in.Offset, ID: r.Items[0].ID}); got != want || got.ID == "" {
		t.Errorf("item = %+v, want %+v with an id", got, want)
	}
	req := fs.request()
	c := req.Completion
	if req.Op != wire.OpCompletion || req.Model != "fast" || req.MaxTokens != 64 || c == nil {
		t.Fatalf("request = %+v", req)
	}
	if len(req.Stop) != 1 || req.Stop[0] != "\n" || c.Multiline {
		t.Errorf("single-line request: stop %q, multiline %v", req.Stop, c.Multiline)
	}
	if string(c.Prefix) != in.Text[:in.Offset] || string(c.Suffix) != in.Text[in.Offset:] {
		t.Errorf("prefix/suffix do not split the document at the cursor")
	}
	if c.Language != "go" || c.Path != "main.go" {
		t.Errorf("language %q path %q", c.Language, c.Path)
	}
}

func TestCompleteContextBudgetsAndMasking(t *testing.T) {
	fs := &fakeStreamer{stream: answers("x")}
	e := New(Config{}, fs, nil)
	var doc strings.Builder
	for i := range 100 {
		fmt.Fprintf(&doc, "line%02d\n", i) // 7 bytes a line
	}
	doc.WriteString("key := \"AKIA" + strings.Repeat("Z", 16) + "\"\n│\n")
	for i := range 100 {
		fmt.Fprintf(&doc, "tail%02d\n", i)
	}
	in := input(t, doc.String())
	in.Settings.PrefixChars, in.Settings.SuffixChars = 60, 20
	if _, err := e.Complete(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	c := fs.request().Completion
	if want := "line96\nline97\nline98\nline99\nkey := \"<aws-access-key-id>\"\n"; string(c.Prefix) != want {
		t.Errorf("prefix = %q, want %q (whole lines within 60 bytes, masked)", string(c.Prefix), want)
	}
	if want := "\ntail00\ntail01\n"; string(c.Suffix) != want {
		t.Errorf("suffix = %q, want %q (whole lines within 20 bytes)", string(c.Suffix), want)
	}
}

func TestCacheHitAndExpiry(t *testing.T) {
	fs := &fakeStreamer{stream: answers("1 + 2")}
	now := time.Unix(1000, 0)
	e := New(Config{Now: func() time.Time { return now }}, fs, nil)
	in := input(t, "x := │\n")
	ctx := context.Background()
	for i, want := range []struct {
		calls     int64
		fromCache bool
	}{{1, false}, {1, true}} {
		r, err := e.Complete(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if itemText(t, r) != "1 + 2" || r.FromCache != want.fromCache || fs.calls.Load() != want.calls {
			t.Errorf("request %d: %q fromCache %v calls %d, want fromCache %v calls %d", i, itemText(t, r), r.FromCache, fs.calls.Load(), want.fromCache, want.calls)
		}
	}
	in.Settings.Model = "other" // another model: another key
	if r, _ := e.Complete(ctx, in); r.FromCache || fs.calls.Load() != 2 {
		t.Errorf("a different model hit the cache")
	}
	now = now.Add(6 * time.Minute)
	in.Settings.Model = ""
	if r, _ := e.Complete(ctx, in); r.FromCache || fs.calls.Load() != 3 {
		t.Errorf("an expired entry hit the cache")
	}
	if s := e.Stats(); s.CacheHits != 1 || s.Sent != 3 || s.Requests != 4 {
		t.Errorf("stats = %+v", s)
	}
}

func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	c := newCache(2, time.Minute)
	now := time.Now()
	c.put(1, "d1", "a", now)
	c.put(2, "d1", "b", now)
	c.get(1, now) // 2 is now the least recently used
	c.put(3, "d2", "c", now)
	for _, tt := range []struct {
		key uint64
		ok  bool
	}{{1, true}, {2, false}, {3, true}} {
		if _, ok := c.get(tt.key, now); ok != tt.ok {
			t.Errorf("key %d present = %v, want %v", tt.key, ok, tt.ok)
		}
	}
}

// TestCacheForget checks that closing a document drops the suggestions made for it.
func TestCacheForget(t *testing.T) {
	c := newCache(8, time.Minute)
	now := time.Now()
	c.put(1, "closed", "a", now)
	c.put(2, "open", "b", now)
	c.put(3, "closed", "c", now)
	c.forget("closed")
	for _, tt := range []struct {
		key uint64
		ok  bool
	}{{1, false}, {2, true}, {3, false}} {
		if _, ok := c.get(tt.key, now); ok != tt.ok {
			t.Errorf("key %d present = %v, want %v", tt.key, ok, tt.ok)
		}
	}
	if c.ll.Len() != 1 || len(c.idx) != 1 {
		t.Errorf("%d entries, %d keys left, want 1", c.ll.Len(), len(c.idx))
	}
}

func TestTypedAhead(t *testing.T) {
	fs := &fakeStreamer{stream: answers("compute(a, b)")}
	e := New(Config{}, fs, nil)
	ctx := context.Background()
	if _, err := e.Complete(ctx, input(t, "func f() {\n\tx := │\n}\n")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, doc, want string
		calls           int64
	}{
		{"typed the start", "func f() {\n\tx := comp│\n}\n", "ute(a, b)", 1},
		{"typed more", "func f() {\n\tx := compute(a│\n}\n", ", b)", 1},
		{"typed something else", "func f() {\n\tx := cz│\n}\n", "compute(a, b)", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := e.Complete(ctx, input(t, tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			if got := itemText(t, r); got != tt.want || fs.calls.Load() != tt.calls {
				t.Errorf("got %q after %d calls, want %q after %d", got, fs.calls.Load(), tt.want, tt.calls)
			}
		})
	}
	// A change after the cursor (an auto-inserted closer) makes it stale.
	fs2 := &fakeStreamer{stream: answers("compute(a, b)")}
	e2 := New(Config{}, fs2, nil)
	e2.Complete(ctx, input(t, "x := │\n"))
	e2.Complete(ctx, input(t, "x := co│)\n"))
	if fs2.calls.Load() != 2 {
		t.Errorf("typed-ahead answered although the text after the cursor changed")
	}
	if e.Stats().TypedAhead != 2 {
		t.Errorf("typed-ahead count = %d, want 2", e.Stats().TypedAhead)
	}
}

func TestNewRequestSupersedesTheOlder(t *testing.T) {
	started := make(chan struct{})
	oldEnded := make(chan error, 1)
	fs := &fakeStreamer{}
	fs.stream = func(ctx context.Context, req wire.ClientFrame, onDelta func([]byte)) (wire.ServerFrame, error) {
		if strings.HasSuffix(string(req.Completion.Prefix), "old") {
			close(started)
			<-ctx.Done() // a slow model
			oldEnded <- ctx.Err()
			return wire.ServerFrame{}, ctx.Err()
		}
		return answers("new")(ctx, req, onDelta)
	}
	e := New(Config{}, fs, nil)
	res := make(chan error, 1)
	go func() {
		_, err := e.Complete(context.Background(), input(t, "old│"))
		res <- err
	}()
	<-started
	r, err := e.Complete(context.Background(), input(t, "new│"))
	if err != nil || itemText(t, r) != "new" {
		t.Fatalf("new request: %v", err)
	}
	err = <-res
	if !errors.Is(err, ErrSuperseded) || !errors.Is(err, context.Canceled) {
		t.Fatalf("old request err = %v, want ErrSuperseded (a context.Canceled)", err)
	}
	if got := <-oldEnded; !errors.Is(got, context.Canceled) {
		t.Errorf("the old stream's context: %v, want cancelled", got)
	}

	// Another document is not affected.
	other := make(chan struct{})
	fs.stream = func(ctx context.Context, req wire.ClientFrame, onDelta func([]byte)) (wire.ServerFrame, error) {
		if req.Completion.Path == "a.go" {
			close(other)
			return answers("a")(ctx, req, onDelta)
		}
		<-other
		return answers("b")(ctx, req, onDelta)
	}
	var wg sync.WaitGroup
	for _, p := range []string{"a.go", "b.go"} {
		wg.Go(func() {
			in := input(t, "x := │")
			in.DocKey, in.RelPath = p, p
			if _, err := e.Complete(context.Background(), in); err != nil {
				t.Errorf("%s: %v", p, err)
			}
		})
	}
	wg.Wait()
}

// TestCacheHitSupersedesTheOlder: a request the cache answers still ends the document's
// running request, though it sends nothing itself.
func TestCacheHitSupersedesTheOlder(t *testing.T) {
	fs := &fakeStreamer{stream: answers("cached")}
	e := New(Config{}, fs, nil)
	if _, err := e.Complete(context.Background(), input(t, "hit│")); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	fs.stream = func(ctx context.Context, req wire.ClientFrame, onDelta func([]byte)) (wire.ServerFrame, error) {
		close(started)
		<-ctx.Done() // a slow model
		return wire.ServerFrame{}, ctx.Err()
	}
	res := make(chan error, 1)
	go func() {
		_, err := e.Complete(context.Background(), input(t, "slow│"))
		res <- err
	}()
	<-started
	r, err := e.Complete(context.Background(), input(t, "hit│"))
	if err != nil || !r.FromCache || itemText(t, r) != "cached" {
		t.Fatalf("the repeated request: %+v, %v; want the cached suggestion", r, err)
	}
	if err := <-res; !errors.Is(err, ErrSuperseded) {
		t.Fatalf("the running request: %v, want ErrSuperseded", err)
	}
	if got := fs.calls.Load(); got != 2 {
		t.Errorf("%d requests sent, want 2 (the hit sends none)", got)
	}
}

func TestDebounce(t *testing.T) {
	tests := []struct {
		name            string
		debounceMS      int
		clientDebounces bool
		trigger         Trigger
		want            time.Duration
	}{
		{"automatic for a client that does not debounce", -1, false, Automatic, 75 * time.Millisecond},
		{"automatic for a client that debounces", -1, true, Automatic, 0},
		{"configured", 200, true, Automatic, 200 * time.Millisecond},
		{"off", 0, false, Automatic, 0},
		{"invoked never waits", 200, false, Invoked, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var sentAt time.Time
				fs := &fakeStreamer{stream: func(ctx context.Context, req wire.ClientFrame, onDelta func([]byte)) (wire.ServerFrame, error) {
					sentAt = time.Now()
					return answers("1")(ctx, req, onDelta)
				}}
				e := New(Config{}, fs, nil)
				in := input(t, "x := │")
				in.Settings.DebounceMS, in.ClientDebounces, in.Trigger = tt.debounceMS, tt.clientDebounces, tt.trigger
				start := time.Now()
				if _, err := e.Complete(context.Background(), in); err != nil {
					t.Fatal(err)
				}
				if got := sentAt.Sub(start); got != tt.want {
					t.Errorf("sent after %v, want %v", got, tt.want)
				}
			})
		})
	}
}

func TestTypingDuringDebounceSendsOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := &fakeStreamer{stream: answers("1")}
		e := New(Config{}, fs, nil)
		errs := make(chan error, 3)
		for _, doc := range []string{"x│", "x :│", "x := │"} {
			go func() {
				in := input(t, doc)
				in.Settings.DebounceMS = 100
				_, err := e.Complete(context.Background(), in)
				errs <- err
			}()
			time.Sleep(30 * time.Millisecond) // a keystroke every 30ms
			synctest.Wait()
		}
		var superseded int
		for range 3 {
			if err := <-errs; errors.Is(err, ErrSuperseded) {
				superseded++
			} else if err != nil {
				t.Fatal(err)
			}
		}
		if superseded != 2 || fs.calls.Load() != 1 {
			t.Errorf("superseded %d, sent %d; want 2 superseded and 1 request", superseded, fs.calls.Load())
		}
	})
}

// blockingAfter streams deltas, then waits for the engine to stop the stream; it reports
// whether it was stopped.
func blockingAfter(stopped chan<- bool, deltas ...string) func(context.Context, wire.ClientFrame, func([]byte)) (wire.ServerFrame, error) {
	return func(ctx context.Context, req wire.ClientFrame, onDelta func([]byte)) (wire.ServerFrame, error) {
		for _, d := range deltas {
			onDelta([]byte(d))
		}
		select {
		case <-ctx.Done():
			stopped <- true
			return wire.ServerFrame{}, fmt.Errorf("stream: %w", ctx.Err())
		case <-time.After(10 * time.Second):
			stopped <- false
			return wire.ServerFrame{}, errors.New("never stopped")
		}
	}
}

func TestEarlyStop(t *testing.T) {
	tests := []struct {
		name, doc string
		deltas    []string
		want      string
	}{
		{"single line at the line break", "x := │\n", []string{"comp", "ute()\nnext", "()"}, "compute()"},
		{"block closed", "func f() {│\n\nfunc g() {}\n", []string{"\n\treturn 1\n", "}\n"}, "\n\treturn 1\n}"},
		{"dedent", "func f() {\n\t│\n}\n", []string{"a()\n\tb()\n", "}\n"}, "a()\n\tb()"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stopped := make(chan bool, 1)
			fs := &fakeStreamer{stream: blockingAfter(stopped, tt.deltas...)}
			e := New(Config{}, fs, nil)
			r, err := e.Complete(context.Background(), input(t, tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			if !<-stopped {
				t.Fatal("the engine did not stop the stream")
			}
			if got := itemText(t, r); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if e.Stats().EarlyStops != 1 {
				t.Errorf("early stops = %d", e.Stats().EarlyStops)
			}
		})
	}
}

func TestErrorsPassThrough(t *testing.T) {
	limited := &wire.Error{Code: wire.CodeRateLimited, RetryAfterMS: 500}
	fs := &fakeStreamer{stream: func(context.Context, wire.ClientFrame, func([]byte)) (wire.ServerFrame, error) {
		return wire.ServerFrame{}, limited
	}}
	e := New(Config{}, fs, nil)
	_, err := e.Complete(context.Background(), input(t, "x := │"))
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != wire.CodeRateLimited || we.RetryAfterMS != 500 {
		t.Fatalf("err = %v, want the rate_limited error", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Complete(ctx, input(t, "y := │")); !errors.Is(err, context.Canceled) || errors.Is(err, ErrSuperseded) {
		t.Fatalf("cancelled request: %v, want context.Canceled", err)
	}
}

func TestEmptySuggestionGivesNoItems(t *testing.T) {
	fs := &fakeStreamer{stream: answers("  \n")}
	e := New(Config{}, fs, nil)
	r, err := e.Complete(context.Background(), input(t, "x := │"))
	if err != nil || len(r.Items) != 0 {
		t.Fatalf("got %+v, %v; want no items", r, err)
	}
}

func TestIgnoredFilesAreNeverSent(t *testing.T) {
	fs := &fakeStreamer{stream: answers("x")}
	e := New(Config{}, fs, nil)
	for _, p := range []string{".env", "deploy/server.pem", "home/.ssh/id_rsa", "config/credentials.json"} {
		in := input(t, "SECRET=│")
		in.RelPath = p
		if _, err := e.Complete(context.Background(), in); !errors.Is(err, ErrIgnored) {
			t.Errorf("%s: err = %v, want ErrIgnored", p, err)
		}
	}
	if fs.calls.Load() != 0 {
		t.Errorf("an ignored file was sent")
	}
}

func TestSnippets(t *testing.T) {
	fs := &fakeStreamer{stream: answers("x")}
	e := New(Config{}, fs, nil)
	in := input(t, "func total(orders []Order) int {\n\treturn sumPrices(orders)│\n}\n")
	in.Settings.SnippetChars = 200
	related := "package shop\n\ntype Order struct{ Price int }\n\nfunc sumPrices(orders []Order) int { return 0 }\n"
	in.Others = []Other{
		{RelPath: "unrelated.go", Text: "package x\n\nfunc hello() string { return \"hi\" }\n"},
		{RelPath: "shop.go", Text: related},
		{RelPath: ".env", Text: "Order sumPrices orders\n"},
		{RelPath: "main.go", Text: "Order sumPrices orders\n"}, // the document itself
	}
	if _, err := e.Complete(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	got := fs.request().Completion.Snippets
	if len(got) != 1 || got[0].Path != "shop.go" || string(got[0].Text) != related {
		var paths []string
		for _, s := range got {
			paths = append(paths, s.Path)
		}
		t.Fatalf("snippets from %v, want shop.go whole", paths)
	}

	in.Settings.SnippetChars = 50 // the budget cuts at a line boundary
	in.Text += " "                // miss the cache
	if _, err := e.Complete(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	got = fs.request().Completion.Snippets
	if len(got) != 1 || string(got[0].Text) != "package shop\n\ntype Order struct{ Price int }\n" {
		t.Fatalf("snippet within 50 bytes = %q", string(got[0].Text))
	}
}

func TestSelectedItemIsExtended(t *testing.T) {
	fs := &fakeStreamer{stream: answers(`("hi")`)}
	e := New(Config{}, fs, nil)
	in := input(t, "fmt.Pr│\n")
	in.Selected = &Selected{Start: 4, End: 6, Text: "Println"}
	r, err := e.Complete(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if got := fs.request().Completion.Prefix; string(got) != "fmt.Println" {
		t.Errorf("prefix = %q, want the text with the selected item accepted", string(got))
	}
	if got, want := r.Items[0], (Item{InsertText: `Println("hi")`, Start: 4, End: 6, ID: r.Items[0].ID}); got != want {
		t.Errorf("item = %+v, want %+v", got, want)
	}
}

func TestCounters(t *testing.T) {
	e := New(Config{}, &fakeStreamer{}, nil)
	e.Shown("a")
	e.Shown("b")
	e.Accepted("a")
	e.PartiallyAccepted("b")
	e.Accepted("")
	if s := e.Stats(); s.Shown != 2 || s.Accepted != 1 || s.PartiallyAccepted != 1 {
		t.Errorf("stats = %+v", s)
	}
}

func BenchmarkComplete(b *testing.B) {
	var doc strings.Builder
	for i := range 300 {
		fmt.Fprintf(&doc, "func f%d(a, b int) int {\n\treturn a + b*%d\n}\n\n", i, i)
	}
	text := doc.String()
	others := []Other{{RelPath: "other.go", Text: text}}
	mk := func(i int) Input {
		t := text + fmt.Sprintf("func g%d() int {\n\treturn ", i)
		s := config.Default()
		s.DebounceMS = 0
		return Input{DocKey: "d", Text: t + "\n}\n", Offset: len(t), Language: "go", RelPath: "main.go", Settings: s, Others: others}
	}
	fs := &fakeStreamer{stream: answers("a + b")}
	b.Run("miss", func(b *testing.B) {
		e := New(Config{}, fs, nil)
		ins := make([]Input, 1024)
		for i := range ins {
			ins[i] = mk(i)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			if i%len(ins) == 0 {
				e.cache = newCache(100, time.Minute)
			}
			if _, err := e.Complete(context.Background(), ins[i%len(ins)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("hit", func(b *testing.B) {
		e := New(Config{}, fs, nil)
		in := mk(0)
		if _, err := e.Complete(context.Background(), in); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if r, err := e.Complete(context.Background(), in); err != nil || !r.FromCache {
				b.Fatal("not a cache hit", err)
			}
		}
	})
}

// modelStreamer is a fakeStreamer whose backend names its default model, as remote.Client does
// from the backend's hello.
type modelStreamer struct {
	fakeStreamer
	mu    sync.Mutex
	model string
}

func (m *modelStreamer) DefaultModel() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.model
}

func (m *modelStreamer) setModel(name string) {
	m.mu.Lock()
	m.model = name
	m.mu.Unlock()
}

// TestCacheKeyedByDefaultModel checks that suggestions of the backend's default model are not
// shown once the backend names another default, from the cache or typed ahead.
func TestCacheKeyedByDefaultModel(t *testing.T) {
	ms := &modelStreamer{model: "small"}
	reply := "1 + 2"
	ms.stream = func(ctx context.Context, req wire.ClientFrame, onDelta func([]byte)) (wire.ServerFrame, error) {
		return answers(reply)(ctx, req, onDelta)
	}
	e := New(Config{}, ms, nil)
	ctx := context.Background()
	in := input(t, "x := │\n")
	complete := func(in Input) Result {
		t.Helper()
		r, err := e.Complete(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	steps := []struct {
		name      string
		model     string // the backend's default before the step
		in        Input
		reply     string
		want      string
		fromCache bool
	}{
		{"first", "small", in, "1 + 2", "1 + 2", false},
		{"same default: cached", "small", in, "unused", "1 + 2", true},
		{"new default: asked again", "large", in, "3", "3", false},
		{"new default: its own answer cached", "large", in, "unused", "3", true},
		{"old default back: its answer again", "small", in, "unused", "1 + 2", true},
	}
	for _, st := range steps {
		ms.setModel(st.model)
		reply = st.reply
		r := complete(st.in)
		if got := itemText(t, r); got != st.want || r.FromCache != st.fromCache {
			t.Errorf("%s: %q fromCache %v, want %q fromCache %v", st.name, got, r.FromCache, st.want, st.fromCache)
		}
	}

	// Typed ahead: the start of "1 + 2" typed is not completed from it once the default changed.
	typed := input(t, "x := 1 │\n")
	ms.setModel("large")
	reply = "* 4"
	if r := complete(typed); itemText(t, r) != "* 4" || r.FromCache {
		t.Errorf("typed ahead after a change of default: %q fromCache %v", itemText(t, r), r.FromCache)
	}

	// The default changes while an answer is being made: it is not cached for either.
	ms.stream = func(ctx context.Context, req wire.ClientFrame, onDelta func([]byte)) (wire.ServerFrame, error) {
		ms.setModel("other")
		return answers("5")(ctx, req, onDelta)
	}
	fresh := input(t, "y := │\n")
	ms.setModel("large")
	complete(fresh)
	calls := ms.calls.Load()
	ms.stream = answers("6")
	if r := complete(fresh); r.FromCache || ms.calls.Load() != calls+1 {
		t.Errorf("an answer made while the default changed was cached")
	}
}
