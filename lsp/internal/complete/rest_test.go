package complete

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	wire "github.com/codingplan/codingplan/shared"
)

// paced streams its first delta at once and each later one when the test sends on next, as a
// model streaming a block token by token; ended gets the cause of the stream's context when
// the engine stopped it, nil when it streamed every delta.
type paced struct {
	deltas []string
	next   chan struct{}
	ended  chan error
}

func newPaced(deltas ...string) *paced {
	return &paced{deltas: deltas, next: make(chan struct{}), ended: make(chan error, 1)}
}

func (p *paced) stream(ctx context.Context, _ wire.ClientFrame, onDelta func([]byte)) (wire.ServerFrame, error) {
	for i, d := range p.deltas {
		if i > 0 {
			select {
			case <-p.next:
			case <-ctx.Done():
				p.ended <- context.Cause(ctx)
				return wire.ServerFrame{}, ctx.Err()
			}
		}
		onDelta([]byte(d))
	}
	if ctx.Err() != nil {
		p.ended <- context.Cause(ctx)
		return wire.ServerFrame{}, ctx.Err()
	}
	p.ended <- nil
	return wire.ServerFrame{Type: wire.TypeDone, FinishReason: wire.FinishStop}, nil
}

// pacedEngine returns an engine whose stream is a paced blockDeltas, closed when the test ends.
func pacedEngine(t *testing.T) (*paced, *fakeStreamer, *Engine) {
	p := newPaced(blockDeltas...)
	fs := &fakeStreamer{stream: p.stream}
	e := New(Config{}, fs, nil)
	t.Cleanup(e.Close)
	return p, fs, e
}

// release lets the remaining deltas out.
func (p *paced) release(n int) {
	for range n {
		p.next <- struct{}{}
	}
}

// running reports whether the stream has not ended yet.
func (p *paced) running(t *testing.T) bool {
	t.Helper()
	synctest.Wait()
	select {
	case err := <-p.ended:
		p.ended <- err
		return false
	default:
		return true
	}
}

// A blank line in a function body: a multi-line request.
const (
	blockDoc    = "func f() {\n\t│\n}\n"
	blockLine1  = "func f() {\n\ta()│\n}\n" // the first line accepted
	blockWhole  = "a()\n\tb()\n\tc()"
	blockRest   = "\n\tb()\n\tc()"
	blockTyping = "func f() {\n\tz│\n}\n" // something else typed: a new request
)

var blockDeltas = []string{"a()\n", "\tb()\n", "\tc()"}

// TestBlockFirstLineThenRest is issue 13's: the first line of a block is answered before the
// stream ends (BlockWait after it is complete), and once the stream has ended, accepting that
// line gives the next lines from typed-ahead without another request.
func TestBlockFirstLineThenRest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, fs, e := pacedEngine(t)
		ctx := context.Background()

		start := time.Now()
		r, err := e.Complete(ctx, input(t, blockDoc))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := itemText(t, r), "a()"; got != want {
			t.Errorf("first answer %q, want %q", got, want)
		}
		if got, want := time.Since(start), 30*time.Millisecond; got != want {
			t.Errorf("answered after %v, want BlockWait (%v) after the first line", got, want)
		}
		if !p.running(t) {
			t.Fatal("the stream ended before the answer: nothing was answered early")
		}
		if fs.request().Completion.Multiline != true || len(fs.request().Stop) != 0 {
			t.Errorf("a multi-line request was sent as %+v", fs.request())
		}

		p.release(2)
		if err := <-p.ended; err != nil {
			t.Fatalf("the rest was stopped: %v", err)
		}
		synctest.Wait() // settled

		r, err = e.Complete(ctx, input(t, blockLine1))
		if err != nil {
			t.Fatal(err)
		}
		if got := itemText(t, r); got != blockRest || !r.FromCache {
			t.Errorf("after accepting the first line: %q (from cache %v), want %q from typed-ahead", got, r.FromCache, blockRest)
		}
		// The same context again: the cache holds the whole block.
		r, err = e.Complete(ctx, input(t, blockDoc))
		if err != nil {
			t.Fatal(err)
		}
		if got := itemText(t, r); got != blockWhole || !r.FromCache {
			t.Errorf("the first context again: %q (from cache %v), want the whole block %q", got, r.FromCache, blockWhole)
		}
		st := e.Stats()
		if fs.calls.Load() != 1 || st.Continued != 1 || st.TypedAhead != 1 || st.CacheHits != 1 {
			t.Errorf("%d requests sent, stats %+v; want 1 sent, 1 continued, 1 typed-ahead, 1 cache hit", fs.calls.Load(), st)
		}
	})
}

// TestBlockAcceptedBeforeTheRest: a request just past the lines shown, before the rest has
// arrived, waits for it instead of sending another request.
func TestBlockAcceptedBeforeTheRest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, fs, e := pacedEngine(t)
		ctx := context.Background()
		if r, err := e.Complete(ctx, input(t, blockDoc)); err != nil || itemText(t, r) != "a()" {
			t.Fatalf("first answer %+v, %v", r, err)
		}
		type answer struct {
			r   Result
			err error
		}
		got := make(chan answer, 1)
		go func() {
			r, err := e.Complete(ctx, input(t, blockLine1))
			got <- answer{r, err}
		}()
		synctest.Wait()
		select {
		case a := <-got:
			t.Fatalf("answered %+v, %v before the rest arrived", a.r, a.err)
		default:
		}
		p.release(2)
		a := <-got
		if a.err != nil {
			t.Fatal(a.err)
		}
		if text := itemText(t, a.r); text != blockRest || !a.r.FromCache {
			t.Errorf("got %q (from cache %v), want %q from typed-ahead", text, a.r.FromCache, blockRest)
		}
		if fs.calls.Load() != 1 {
			t.Errorf("%d requests sent, want 1", fs.calls.Load())
		}
	})
}

// TestBlockWholeWhenCheap: a block whose lines arrive within BlockWait shows whole, and no
// stream is left running.
func TestBlockWholeWhenCheap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := &fakeStreamer{stream: answers(blockDeltas...)}
		e := New(Config{}, fs, nil)
		defer e.Close()
		r, err := e.Complete(context.Background(), input(t, blockDoc))
		if err != nil {
			t.Fatal(err)
		}
		if got := itemText(t, r); got != blockWhole {
			t.Errorf("got %q, want the whole block %q", got, blockWhole)
		}
		if st := e.Stats(); st.Continued != 0 {
			t.Errorf("continued = %d, want 0", st.Continued)
		}
	})
}

// TestBlockRestEnds covers what ends the rest early, and what it keeps then.
func TestBlockRestEnds(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		after func(t *testing.T, e *Engine, p *paced)
		cause error  // the stream context's cause
		ahead string // then typed-ahead's answer after the first line, "" for none
		sent  int64  // requests sent in all
	}{
		{
			name: "a cache hit leaves it running",
			after: func(t *testing.T, e *Engine, p *paced) {
				if r, err := e.Complete(context.Background(), input(t, blockDoc)); err != nil || !r.FromCache {
					t.Fatalf("repeat: %+v, %v; want a cache hit", r, err)
				}
				if !p.running(t) {
					t.Fatal("a cache hit ended the rest")
				}
				p.release(2)
			},
			ahead: blockRest, sent: 1,
		},
		{
			name: "a request sent for the document drops it",
			after: func(t *testing.T, e *Engine, p *paced) {
				if _, err := e.Complete(context.Background(), input(t, blockTyping)); err != nil {
					t.Fatal(err)
				}
			},
			cause: errDropped, sent: 2,
		},
		{
			name: "a request sent for another document drops it",
			after: func(t *testing.T, e *Engine, p *paced) {
				in := input(t, blockTyping)
				in.DocKey = "file:///w/other.go"
				if _, err := e.Complete(context.Background(), in); err != nil {
					t.Fatal(err)
				}
			},
			cause: errDropped, sent: 2,
		},
		{
			name:  "didClose drops it and what it made",
			after: func(t *testing.T, e *Engine, p *paced) { e.Forget(input(t, blockDoc).DocKey) },
			cause: errDropped, sent: 2, // the first line's context is asked again
		},
		{
			name:  "RestTime keeps the complete lines",
			cfg:   Config{RestTime: time.Second},
			after: func(t *testing.T, e *Engine, p *paced) { p.release(1); time.Sleep(2 * time.Second) },
			cause: errRestTime, ahead: "\n\tb()", sent: 1,
		},
		{
			name:  "RestBytes keeps the complete lines within",
			cfg:   Config{RestBytes: 11},
			after: func(t *testing.T, e *Engine, p *paced) { p.release(2) },
			cause: errTooLong, ahead: "\n\tb()", sent: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := newPaced(blockDeltas...)
				fs := &fakeStreamer{}
				fs.stream = func(ctx context.Context, req wire.ClientFrame, onDelta func([]byte)) (wire.ServerFrame, error) {
					if string(req.Completion.Prefix) == input(t, blockDoc).Text[:input(t, blockDoc).Offset] && fs.calls.Load() == 1 {
						return p.stream(ctx, req, onDelta)
					}
					return answers("x()")(ctx, req, onDelta)
				}
				e := New(tt.cfg, fs, nil)
				defer e.Close()
				if r, err := e.Complete(context.Background(), input(t, blockDoc)); err != nil || itemText(t, r) != "a()" {
					t.Fatalf("first answer %+v, %v", r, err)
				}
				tt.after(t, e, p)
				if got := <-p.ended; !errors.Is(got, tt.cause) || (tt.cause == nil) != (got == nil) {
					t.Errorf("the stream ended with %v, want %v", got, tt.cause)
				}
				synctest.Wait()
				if tt.name == "didClose drops it and what it made" {
					if r, err := e.Complete(context.Background(), input(t, blockDoc)); err != nil || r.FromCache {
						t.Errorf("after didClose: %+v, %v; want a new request", r, err)
					}
				}
				r, err := e.Complete(context.Background(), input(t, blockLine1))
				if err != nil {
					t.Fatal(err)
				}
				got := ""
				if r.FromCache && len(r.Items) == 1 {
					got = r.Items[0].InsertText
				}
				if got != tt.ahead {
					t.Errorf("after the first line: %q, want %q from typed-ahead", got, tt.ahead)
				}
				if n := fs.calls.Load(); n != tt.sent+boolInt(tt.ahead == "") {
					t.Errorf("%d requests sent, want %d", n, tt.sent+boolInt(tt.ahead == ""))
				}
			})
		})
	}
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// TestBlockCancelledBeforeItsFirstLine: until the answer, the request's end stops the stream
// (the editor's $/cancelRequest, a newer request).
func TestBlockCancelledBeforeItsFirstLine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPaced("\n", "a()\n")
		fs := &fakeStreamer{stream: p.stream}
		e := New(Config{}, fs, nil)
		defer e.Close()
		ctx, cancel := context.WithCancel(context.Background())
		res := make(chan error, 1)
		go func() {
			_, err := e.Complete(ctx, input(t, blockDoc))
			res <- err
		}()
		synctest.Wait()
		cancel()
		if err := <-res; !errors.Is(err, context.Canceled) || errors.Is(err, ErrSuperseded) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
		if got := <-p.ended; !errors.Is(got, context.Canceled) {
			t.Errorf("the stream's context ended with %v, want context.Canceled", got)
		}
	})
}

// TestBlockErrors: an error before a line is complete is the request's, as for a single line;
// one after it leaves the complete lines.
func TestBlockErrors(t *testing.T) {
	limited := &wire.Error{Code: wire.CodeRateLimited, RetryAfterMS: 500}
	failAfter := func(deltas ...string) func(context.Context, wire.ClientFrame, func([]byte)) (wire.ServerFrame, error) {
		return func(ctx context.Context, req wire.ClientFrame, onDelta func([]byte)) (wire.ServerFrame, error) {
			for _, d := range deltas {
				onDelta([]byte(d))
			}
			return wire.ServerFrame{}, limited
		}
	}
	synctest.Test(t, func(t *testing.T) {
		e := New(Config{}, &fakeStreamer{stream: failAfter("a(")}, nil)
		defer e.Close()
		if _, err := e.Complete(context.Background(), input(t, blockDoc)); !errors.Is(err, limited) {
			t.Errorf("err = %v, want the backend's", err)
		}
		e2 := New(Config{}, &fakeStreamer{stream: failAfter("a()\n\tb(")}, nil)
		defer e2.Close()
		r, err := e2.Complete(context.Background(), input(t, blockDoc))
		if err != nil || itemText(t, r) != "a()" {
			t.Errorf("got %+v, %v; want the complete line", r, err)
		}
	})
}

// TestCloseStopsTheRest: Close ends the streams running after their answers and waits.
func TestCloseStopsTheRest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, _, e := pacedEngine(t)
		if _, err := e.Complete(context.Background(), input(t, blockDoc)); err != nil {
			t.Fatal(err)
		}
		e.Close()
		select {
		case got := <-p.ended:
			if !errors.Is(got, errDropped) {
				t.Errorf("the stream ended with %v, want errDropped", got)
			}
		default:
			t.Error("Close returned before the stream ended")
		}
	})
}
