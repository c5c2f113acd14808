package gateway

import (
	"context"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/codingplan/codingplan/backend/internal/upstream"
	wire "github.com/codingplan/codingplan/shared"
)

// benchChunk is one chunk of model output in the relay benchmarks: 24 bytes with characters
// that JSON escapes.
var benchChunk = []byte("\treturn a + b // sum\n\t}")

// chunkProvider emits n benchChunks, waiting gap before each one after the first (0: as fast as
// the relay takes them).
func chunkProvider(n int, gap time.Duration) *fakeProvider {
	return &fakeProvider{stream: func(ctx context.Context, _ *upstream.Request, sink upstream.Sink) (upstream.Result, error) {
		for i := range n {
			if gap > 0 && i > 0 {
				time.Sleep(gap)
			}
			if err := sink(0, benchChunk); err != nil {
				return upstream.Result{}, err
			}
		}
		return upstream.Result{FinishReason: wire.FinishStop}, nil
	}}
}

// BenchmarkRelay measures the gateway's cost per streamed chunk: one stream whose provider
// emits b.N chunks of 24 bytes as fast as the relay takes them, to a real websocket client in
// the same process that decodes each frame. ns/op and allocs/op are per chunk, both ends
// included; frames/chunk shows how far the writer merged deltas. BenchmarkRelayCPU separates
// the server's CPU from the client's.
func BenchmarkRelay(b *testing.B) {
	h := newHarness(b, setup{cfg: Config{SlowConsumer: time.Minute}, deps: Deps{Router: routeTo(chunkProvider(b.N, 0))}})
	c := h.dial(h.token(nil))
	b.ReportAllocs()
	b.ResetTimer()
	c.request("c1")
	frames, text := readStream(b, c.c, "c1")
	b.StopTimer()
	if want := b.N * len(benchChunk); text != want {
		b.Fatalf("relayed %d bytes of text, want %d", text, want)
	}
	b.ReportMetric(float64(frames)/float64(b.N), "frames/chunk")
}

// readStream reads stream id's frames until its done frame and returns how many delta frames
// came and their text's length.
func readStream(tb testing.TB, c *websocket.Conn, id string) (frames, text int) {
	tb.Helper()
	_ = c.SetReadDeadline(time.Time{})
	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			tb.Fatalf("after %d frames: %v", frames, err)
		}
		f, err := wire.DecodeServer(data)
		if err != nil {
			tb.Fatal(err)
		}
		switch {
		case f.ID != id:
			tb.Fatalf("frame for stream %q, want %q", f.ID, id)
		case f.Type == wire.TypeDelta:
			frames++
			text += len(f.Text)
		case f.Type == wire.TypeDone:
			return frames, text
		default:
			tb.Fatalf("got %s frame %+v", f.Type, f)
		}
	}
}
