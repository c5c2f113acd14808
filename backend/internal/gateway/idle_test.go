package gateway

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestPingsKeepIdleConnectionsOpen: the Server's pinger pings every connection about every
// PingInterval; a client that answers stays connected past IdleTimeout, one that does not is
// closed after it.
func TestPingsKeepIdleConnectionsOpen(t *testing.T) {
	const every, idle = 40 * time.Millisecond, 200 * time.Millisecond
	h := newHarness(t, setup{cfg: Config{PingInterval: every, IdleTimeout: idle}})
	type peer struct {
		pings  atomic.Int32
		enough chan struct{} // closed at the eighth ping
		closed chan struct{} // closed when reading fails
	}
	dial := func(answer bool) *peer {
		c, resp, err := websocket.DefaultDialer.Dial(h.url, http.Header{"Authorization": {"Bearer " + h.token(nil)}})
		if err != nil {
			t.Fatalf("dial: %v (%s)", err, body(resp))
		}
		t.Cleanup(func() { c.Close() })
		p := &peer{enough: make(chan struct{}), closed: make(chan struct{})}
		c.SetPingHandler(func(data string) error {
			if p.pings.Add(1) == 8 {
				close(p.enough)
			}
			if !answer {
				return nil
			}
			return c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		})
		go func() { // ends when the connection does (the cleanup above closes it)
			defer close(p.closed)
			for {
				if _, _, err := c.NextReader(); err != nil {
					return
				}
			}
		}()
		return p
	}
	answering, silent := dial(true), dial(false)
	recv(t, silent.closed, "the close of the connection that did not answer pings")
	if n := silent.pings.Load(); n < 2 {
		t.Errorf("the silent client saw %d pings before it was closed after %v, want about %v", n, idle, idle/every)
	}
	recv(t, answering.enough, "eight pings to the answering client")
	select {
	case <-answering.closed:
		t.Fatal("the client answering pings was disconnected")
	default:
	}
}

// TestPingerStopsWithTheLastSession: the pinger's goroutine runs only while there are sessions.
func TestPingerStopsWithTheLastSession(t *testing.T) {
	h := newHarness(t, setup{})
	c := h.dial(h.token(nil))
	h.srv.pings.mu.Lock()
	running := h.srv.pings.stop != nil
	h.srv.pings.mu.Unlock()
	if !running {
		t.Fatal("no pinger loop with a session open")
	}
	c.c.Close()
	done := make(chan struct{})
	go func() { // ends when the pinger's loop does
		h.srv.pings.wait()
		close(done)
	}()
	recv(t, done, "the pinger's loop to end after the last session")
}
