package gateway

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/codingplan/codingplan/backend/internal/upstream"
	wire "github.com/codingplan/codingplan/shared"
)

// pipeListener serves connections made by dial over net.Pipe, which has no buffer: a write on
// the server returns only once the client has read it. Tests use it to let frames pile up in
// the send queue while the writer is blocked, and count the server's writes.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
	writes atomic.Int64 // Write calls on server-side connections
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	server, client := net.Pipe()
	select {
	case l.conns <- &countingConn{Conn: server, writes: &l.writes}:
		return client, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// dialPipe serves h's gateway on a pipeListener and connects to it.
func (h *harness) dialPipe() (*client, *pipeListener) {
	h.t.Helper()
	l := newPipeListener()
	hs := &http.Server{Handler: h.srv}
	served := make(chan struct{})
	go func() { // owned by the cleanup below, which waits for it
		defer close(served)
		_ = hs.Serve(l)
	}()
	h.t.Cleanup(func() {
		_ = hs.Close()
		<-served
	})
	d := websocket.Dialer{NetDialContext: l.dial}
	c, resp, err := d.Dial("ws://pipe"+wire.Path, http.Header{"Authorization": {"Bearer " + h.token(nil)}})
	if err != nil {
		h.t.Fatalf("dial: %v (%s)", err, body(resp))
	}
	h.t.Cleanup(func() { c.Close() })
	cl := &client{t: h.t, c: c}
	cl.hello = cl.expect(wire.TypeHello)
	return cl, l
}

// TestWriterMergesDeltas: deltas of one stream that pile up while the writer is blocked reach
// the client merged into few frames, with the same text in the same order.
func TestWriterMergesDeltas(t *testing.T) {
	const chunks = 200
	var want strings.Builder
	for i := range chunks {
		fmt.Fprintf(&want, "<%d>", i)
	}
	emitted := make(chan struct{})
	p := &fakeProvider{stream: func(ctx context.Context, _ *upstream.Request, sink upstream.Sink) (upstream.Result, error) {
		defer close(emitted)
		for i := range chunks {
			if err := sink(0, fmt.Appendf(nil, "<%d>", i)); err != nil {
				return upstream.Result{}, err
			}
		}
		return upstream.Result{FinishReason: wire.FinishStop}, nil
	}}
	// Room for every chunk: the client reads only once the provider is done.
	h := newHarness(t, setup{cfg: Config{SendQueue: chunks + 8}, deps: Deps{Router: routeTo(p)}})
	c, _ := h.dialPipe()
	c.request("c1")
	recv(t, emitted, "the provider's last chunk") // the writer blocks on the first delta meanwhile
	var got strings.Builder
	frames := 0
	for {
		f := c.expect(wire.TypeDelta)
		if f.ID != "c1" {
			t.Fatalf("delta for %q", f.ID)
		}
		frames++
		got.WriteString(string(f.Text))
		if got.Len() >= want.Len() {
			break
		}
	}
	c.expect(wire.TypeDone)
	if got.String() != want.String() {
		t.Errorf("text: got %q, want %q", got.String(), want.String())
	}
	// The first delta went out alone or with what was queued by then; the rest waited together.
	if frames > 2 {
		t.Errorf("%d delta frames for %d chunks that waited in the queue, want at most 2", frames, chunks)
	}
}

// TestWriterMergeLimits: merging never joins two streams, never makes a frame's text longer
// than maxMerge, and keeps each stream's order; frames that pile up go out in few writes.
func TestWriterMergeLimits(t *testing.T) {
	const perStream = 60
	big := strings.Repeat("x", maxMerge/3+1) // three of them do not fit in one frame
	piece := func(id string, i int) string {
		if i%10 == 9 {
			return big
		}
		return fmt.Sprintf("%s%d;", id, i)
	}
	// The two streams take turns, so their deltas alternate in the queue.
	turn := map[string]chan struct{}{"a": make(chan struct{}, 1), "b": make(chan struct{}, 1)}
	other := map[string]string{"a": "b", "b": "a"}
	var emitted sync.WaitGroup
	emitted.Add(2)
	p := &fakeProvider{stream: func(ctx context.Context, req *upstream.Request, sink upstream.Sink) (upstream.Result, error) {
		defer emitted.Done()
		id := string(req.Completion.Prefix)
		for i := range perStream {
			<-turn[id]
			err := sink(0, []byte(piece(id, i)))
			turn[other[id]] <- struct{}{}
			if err != nil {
				return upstream.Result{}, err
			}
		}
		return upstream.Result{FinishReason: wire.FinishStop}, nil
	}}
	// Room for every frame of both streams: the client reads only once the providers are done.
	h := newHarness(t, setup{cfg: Config{SendQueue: 2*perStream + 8}, deps: Deps{Router: routeTo(p)}})
	c, l := h.dialPipe()
	for _, id := range []string{"a", "b"} {
		c.send(wire.ClientFrame{Type: wire.TypeRequest, ID: id, Op: wire.OpCompletion, Completion: &wire.Completion{Prefix: wire.Text(id)}})
	}
	turn["a"] <- struct{}{}
	waited := make(chan struct{})
	go func() { emitted.Wait(); close(waited) }() // ends with the providers
	recv(t, waited, "the providers' last chunks")
	writesBefore := l.writes.Load()

	got := map[string]*strings.Builder{"a": {}, "b": {}}
	frames, done := 0, 0
	for done < 2 {
		f, err := c.read()
		if err != nil {
			t.Fatal(err)
		}
		switch f.Type {
		case wire.TypeDelta:
			frames++
			if len(f.Text) > maxMerge {
				t.Errorf("delta of %d bytes, over maxMerge %d", len(f.Text), maxMerge)
			}
			got[f.ID].WriteString(string(f.Text))
		case wire.TypeDone:
			done++
		default:
			t.Fatalf("got %+v after %d deltas, %d done; a=%d b=%d", f, frames, done, got["a"].Len(), got["b"].Len())
		}
	}
	for id, b := range got {
		var want strings.Builder
		for i := range perStream {
			want.WriteString(piece(id, i))
		}
		if b.String() != want.String() {
			t.Errorf("stream %s: text differs (got %d bytes, want %d)", id, b.Len(), want.Len())
		}
	}
	// Strict alternation leaves nothing to merge but the first frames: about one frame per chunk.
	if frames < 2*perStream-2 {
		t.Errorf("%d delta frames for %d alternating chunks: deltas of different streams were merged", frames, 2*perStream)
	}
	// Without batching every frame would be a write of its own.
	if writes := l.writes.Load() - writesBefore; writes > 12 {
		t.Errorf("%d writes for %d frames that waited in the queue, want at most 12", writes, frames+2)
	}
}

// TestBatchConnClears: the held buffer is emptied and cleared after a flush, also when the
// connection has failed, since it goes back to a pool every connection shares.
func TestBatchConnClears(t *testing.T) {
	for _, tt := range []struct {
		name    string
		closed  bool
		wantErr bool
	}{{"written", false, false}, {"failed", true, true}} {
		t.Run(tt.name, func(t *testing.T) {
			server, client := net.Pipe()
			defer client.Close()
			read := make(chan []byte, 1)
			go func() { // ends when the pipe is closed
				b := make([]byte, 64)
				n, _ := client.Read(b)
				read <- b[:n]
			}()
			if tt.closed {
				server.Close()
			}
			c := &batchConn{Conn: server}
			c.hold()
			if err := c.SetWriteDeadline(time.Now().Add(wait)); err != nil {
				t.Fatal(err)
			}
			if n, err := c.Write([]byte("secret")); n != 6 || err != nil {
				t.Fatalf("held write: %d, %v", n, err)
			}
			held := c.buf
			err := c.flush()
			if (err != nil) != tt.wantErr {
				t.Fatalf("flush: %v, want error %v", err, tt.wantErr)
			}
			if len(*held) != 0 || string((*held)[:6]) != "\x00\x00\x00\x00\x00\x00" || c.buf != nil {
				t.Errorf("held buffer after flush: %q (len %d), conn still holds one: %v", (*held)[:6], len(*held), c.buf != nil)
			}
			if !tt.closed {
				if got := recv(t, read, "the flushed bytes"); string(got) != "secret" {
					t.Errorf("peer read %q", got)
				}
				server.Close()
			}
		})
	}
}
