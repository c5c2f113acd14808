package gateway

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/codingplan/codingplan/backend/internal/upstream"
	wire "github.com/codingplan/codingplan/shared"
)

// BenchmarkRelay measures the gateway's cost per streamed chunk: one stream whose provider
// emits b.N chunks of 24 bytes as fast as the relay takes them, to a real websocket client that
// reads each frame into io.Discard. ns/op and allocs/op are per chunk, both ends included.
func BenchmarkRelay(b *testing.B) {
	chunk := []byte("\treturn a + b // sum\n\t}")
	p := &fakeProvider{stream: func(ctx context.Context, _ *upstream.Request, sink upstream.Sink) (upstream.Result, error) {
		for range b.N {
			if err := sink(chunk); err != nil {
				return upstream.Result{}, err
			}
		}
		return upstream.Result{FinishReason: wire.FinishStop}, nil
	}}
	h := newHarness(b, setup{cfg: Config{SlowConsumer: time.Minute}, deps: Deps{Router: routeTo(p)}})
	c := h.dial(h.token(nil))
	_ = c.c.SetReadDeadline(time.Time{})
	b.ReportAllocs()
	b.ResetTimer()
	c.request("c1")
	for n := 0; ; n++ {
		mt, r, err := c.c.NextReader()
		if err != nil || mt != websocket.TextMessage {
			b.Fatalf("after %d frames: %v", n, err)
		}
		if n == b.N {
			break // the done frame
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
}
