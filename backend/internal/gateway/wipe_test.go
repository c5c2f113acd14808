package gateway

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// TestWipingPool checks that a websocket write buffer back in the pool holds nothing of the
// message it carried.
func TestWipingPool(t *testing.T) {
	pool := &wipingPool{}
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
	v := pool.Get()
	if v == nil {
		t.Skip("the pool dropped the buffer (a GC ran)")
	}
	b, ok := poolBytes(v)
	if !ok {
		t.Fatalf("the pool holds a %T, not a byte buffer", v)
	}
	if bytes.Contains(b[:cap(b)], []byte("canary")) {
		t.Errorf("a pooled write buffer still holds the message")
	}
}
