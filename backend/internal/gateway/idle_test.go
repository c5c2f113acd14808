package gateway

import (
	"net"
	"net/http"
	"runtime"
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
	// A write timeout shorter than the test: a ping written without a fresh deadline would hit
	// the one its connection's last write set, and fail.
	h := newHarness(t, setup{cfg: Config{PingInterval: every, IdleTimeout: idle, WriteTimeout: 60 * time.Millisecond}})
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
	select {
	case <-answering.enough:
	case <-answering.closed:
		t.Fatalf("the client answering pings was disconnected after %d pings", answering.pings.Load())
	case <-time.After(wait):
		t.Fatal("timed out waiting for eight pings to the answering client")
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

// TestDrained: a connection reports drained only while the peer has acknowledged all it was
// sent, so that the pinger and a stream write into it only when a write cannot block.
func TestDrained(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("SIOCOUTQ is Linux's")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() { // ends with the listener
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	hj := &hijacker{}
	conn := recv(t, accepted, "the accepted connection")
	defer conn.Close()
	bc := hj.wrap(conn)
	if !bc.drained() {
		t.Fatal("a fresh connection is not drained")
	}
	// Fill the socket: the peer reads nothing, so writes stop at the buffers' size.
	_ = bc.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	chunk := make([]byte, 64<<10)
	for {
		if _, err := bc.Write(chunk); err != nil {
			break
		}
	}
	if bc.drained() {
		t.Fatal("a connection whose peer reads nothing reports drained")
	}
}
