package gateway

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/websocket"
)

// recordingPool is a wipingPool that keeps the last value put, which sync.Pool may drop (it
// does so at random under the race detector, and at every GC).
type recordingPool struct {
	wipingPool
	mu   sync.Mutex
	last any
}

func (r *recordingPool) Put(v any) {
	r.wipingPool.Put(v)
	r.mu.Lock()
	r.last = v
	r.mu.Unlock()
}

// TestWipingPool checks that a websocket write buffer back in the pool holds nothing of the
// message it carried.
func TestWipingPool(t *testing.T) {
	pool := &recordingPool{}
	msg := []byte("model output " + strings.Repeat("x", 100) + " canary")
	up := websocket.Upgrader{WriteBufferSize: 4096, WriteBufferPool: pool}
	written := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			written <- err
			return
		}
		defer c.Close()
		written <- c.WriteMessage(websocket.TextMessage, msg)
		_, _, _ = c.ReadMessage() // until the client leaves
	}))
	defer srv.Close()
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, got, err := c.ReadMessage(); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("read %q, %v", got, err)
	}
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	pool.mu.Lock()
	v := pool.last
	pool.mu.Unlock()
	if v == nil {
		t.Fatal("the websocket never put its write buffer back in the pool")
	}
	b, ok := poolBytes(v)
	if !ok {
		t.Fatalf("the pool holds a %T, not a byte buffer", v)
	}
	if bytes.Contains(b[:cap(b)], []byte("canary")) {
		t.Errorf("a pooled write buffer still holds the message")
	}
}

// TestDropQueuedClears: frames a failed writer left in the queue are cleared when the session
// ends, not left to the collector with their text.
func TestDropQueuedClears(t *testing.T) {
	s := &session{send: make(chan *frameBuf, 4)}
	var arrays [][]byte
	for _, text := range []string{"CANARY-one", "CANARY-two"} {
		b := getBuf()
		b.b = append(b.b, text...)
		b.stream = "s1"
		arrays = append(arrays, b.b[:len(text)])
		s.send <- b
	}
	s.dropQueued()
	if n := len(s.send); n != 0 {
		t.Fatalf("%d frames still queued", n)
	}
	for i, a := range arrays {
		if strings.Contains(string(a), "CANARY") {
			t.Errorf("frame %d still holds %q", i, a)
		}
	}
}
