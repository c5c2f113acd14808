package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	wire "github.com/codingplan/codingplan/shared"
)

// What the backend adds between the test provider and a client, measured on the binaries.
//
// BenchmarkTTFT: N workers each alternate two ways of reading the same streamed answer: direct
// (an HTTP client posting to the provider's OpenAI chat API and reading its SSE stream) and
// relay (a websocket client sending a completion request in shared/ frames to
// codingplan-backend, which leases a slot in Valkey, calls the same provider and relays
// deltas). Time to first token is measured from the request's first byte written to the first
// text received. One op is one pair of streams.
//
// BenchmarkRelayCPU: N workers relay long answers through the backend; the backend's CPU time
// (user+system, /proc/PID/stat) and heap allocations (its /metrics) are divided by the chunks
// streamed. One op is one stream.
//
// The provider's echo model streams the user message back in 8-byte chunks, so a prompt's
// length sets the number of chunks.

var streamCounts = []int{1, 16, 128}

const (
	shortPrefixBytes = 96      // ~20 chunks: a typical single-line completion
	longPrefixBytes  = 8 << 10 // ~1,030 chunks
	echoChunkBytes   = 8
)

// codePrefix returns n bytes of code-like text.
func codePrefix(n int) string {
	const unit = "func add(a, b int) int {\n\treturn a + b\n}\n\n"
	return strings.Repeat(unit, n/len(unit)+1)[:n]
}

// userMessage is the chat message the backend builds for a completion of prefix with no
// suffix (backend/internal/upstream/prompt.go), so both ways stream the same bytes.
func userMessage(prefix string) string {
	return "<file path=\"bench.go\" language=\"go\">\n" + prefix + "<CURSOR>\n</file>"
}

func chunksOf(prefix string) int {
	return (len(userMessage(prefix)) + echoChunkBytes - 1) / echoChunkBytes
}

// direct reads the provider's stream itself.
type direct struct {
	client *http.Client
	url    string
	body   []byte
}

func newDirect(r *rig, prefix string, conns int) *direct {
	tr := &http.Transport{MaxIdleConns: conns + 8, MaxIdleConnsPerHost: conns + 8, DisableCompression: true,
		IdleConnTimeout: time.Minute}
	body, err := json.Marshal(map[string]any{
		"model": "echo", "stream": true, "stream_options": map[string]any{"include_usage": true}, "max_tokens": 256,
		"messages": []map[string]string{
			{"role": "system", "content": "You are a code completion engine."},
			{"role": "user", "content": userMessage(prefix)},
		},
	})
	if err != nil {
		panic(err)
	}
	return &direct{client: &http.Client{Transport: tr}, url: r.providerURL + "/v1/chat/completions", body: body}
}

var (
	dataPrefix    = []byte("data: ")
	doneMarker    = []byte("data: [DONE]")
	contentMarker = []byte(`"content":"`)
)

// stream returns the time to the first text chunk and the number of text chunks.
func (d *direct) stream(ctx context.Context, br *bufio.Reader) (time.Duration, int, error) {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(d.body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("provider: %s", resp.Status)
	}
	br.Reset(resp.Body)
	var ttft time.Duration
	chunks := 0
	for {
		line, err := br.ReadSlice('\n')
		if bytes.HasPrefix(line, doneMarker) {
			break
		}
		if bytes.HasPrefix(line, dataPrefix) {
			if i := bytes.Index(line, contentMarker); i >= 0 && i+len(contentMarker) < len(line) && line[i+len(contentMarker)] != '"' {
				if chunks++; chunks == 1 {
					ttft = time.Since(start)
				}
			}
		}
		if err == io.EOF {
			return 0, 0, errors.New("provider stream ended without [DONE]")
		}
		if err != nil {
			return 0, 0, err
		}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return ttft, chunks, nil
}

// relay is one websocket to the backend, used by one worker.
type relay struct {
	conn *websocket.Conn
	seq  int
	buf  []byte
}

// dialRelay connects to be as the rig's user, or as user when it is not "".
func dialRelay(ctx context.Context, r *rig, be *backend, user string) (*relay, error) {
	token := r.token
	if user != "" {
		var err error
		if token, err = r.key.Mint(user, "bench", time.Now(), 2*time.Hour); err != nil {
			return nil, err
		}
	}
	d := websocket.Dialer{Subprotocols: []string{wire.Subprotocol}, HandshakeTimeout: 10 * time.Second,
		ReadBufferSize: 16 << 10, WriteBufferSize: 16 << 10}
	conn, _, err := d.DialContext(ctx, be.wsURL, http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		return nil, fmt.Errorf("dialing the backend: %w", err)
	}
	c := &relay{conn: conn, buf: make([]byte, 0, 64<<10)}
	f, err := c.next()
	if err != nil {
		return nil, err
	}
	if hello, err := wire.DecodeServer(f); err != nil || hello.Type != wire.TypeHello {
		return nil, fmt.Errorf("first frame %q, want hello (%v)", f, err)
	}
	return c, nil
}

// next reads one message into the connection's buffer.
func (c *relay) next() ([]byte, error) {
	_, rd, err := c.conn.NextReader()
	if err != nil {
		return nil, err
	}
	b := c.buf[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := rd.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			c.buf = b
			return b, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

var deltaPrefix = []byte(`{"type":"delta"`)

// stream sends a completion request and reads its stream to the end. It returns the time to
// the first delta and the number of delta frames.
func (c *relay) stream(prefix string) (time.Duration, int, error) {
	c.seq++
	msg, err := wire.Marshal(wire.ClientFrame{Type: wire.TypeRequest, ID: "s" + strconv.Itoa(c.seq), Op: wire.OpCompletion,
		Model: "echo", MaxTokens: 256, Completion: &wire.Completion{Prefix: wire.Text(prefix), Language: "go", Path: "bench.go"}})
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	if err := c.conn.WriteMessage(websocket.TextMessage, msg); err != nil {
		return 0, 0, err
	}
	var ttft time.Duration
	frames := 0
	for {
		f, err := c.next()
		if err != nil {
			return 0, 0, err
		}
		if bytes.HasPrefix(f, deltaPrefix) {
			if frames++; frames == 1 {
				ttft = time.Since(start)
			}
			continue
		}
		sf, err := wire.DecodeServer(f)
		if err != nil {
			return 0, 0, err
		}
		switch sf.Type {
		case wire.TypeDone:
			return ttft, frames, nil
		case wire.TypeError:
			return 0, 0, fmt.Errorf("backend: %s %s", sf.Code, sf.Message)
		}
	}
}

// workers runs n workers, each calling op with its index until ops ops ran in all, and
// returns the first error.
func workers(n, ops int, op func(w, i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, n)
	for w := range n {
		wg.Go(func() {
			for i := int(next.Add(1)); i <= ops; i = int(next.Add(1)) {
				if err := op(w, i); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func dialRelays(b *testing.B, r *rig, be *backend, n int) []*relay {
	b.Helper()
	rs := make([]*relay, n)
	for i := range rs {
		// One user per connection, as many editors: one user's connections are capped
		// (max_conns_per_node), their streams are not (the bench plan allows 1024).
		c, err := dialRelay(context.Background(), r, be, fmt.Sprintf("bench-%s-%d", r.users, i))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.conn.Close() })
		rs[i] = c
	}
	return rs
}

func BenchmarkTTFT(b *testing.B) {
	r := getRig(b)
	for _, n := range streamCounts {
		b.Run(fmt.Sprintf("streams=%d", n), func(b *testing.B) {
			for _, be := range r.round() {
				b.Run("backend="+be.name, func(b *testing.B) { benchTTFT(b, r, be, n) })
			}
		})
	}
}

func benchTTFT(b *testing.B, r *rig, be *backend, n int) {
	ctx := context.Background()
	prefix := codePrefix(shortPrefixBytes)
	d := newDirect(r, prefix, n)
	relays := dialRelays(b, r, be, n)
	readers := make([]*bufio.Reader, n)
	for i := range readers {
		readers[i] = bufio.NewReaderSize(nil, 64<<10)
	}
	direct, relayed := make([][]time.Duration, n), make([][]time.Duration, n)
	pair := func(w, i int) error {
		one := func(first bool) error {
			if first == (i%2 == 0) {
				t, chunks, err := d.stream(ctx, readers[w])
				if err == nil && chunks != chunksOf(prefix) {
					err = fmt.Errorf("direct: %d chunks, want %d", chunks, chunksOf(prefix))
				}
				direct[w] = append(direct[w], t)
				return err
			}
			t, _, err := relays[w].stream(prefix)
			relayed[w] = append(relayed[w], t)
			return err
		}
		if err := one(true); err != nil {
			return err
		}
		return one(false)
	}
	// Warm up every connection, then measure.
	if err := workers(n, 2*n, pair); err != nil {
		b.Fatal(err)
	}
	for w := range n {
		direct[w], relayed[w] = direct[w][:0], relayed[w][:0]
	}
	cpu0, err := be.cpuTime()
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	if err := workers(n, b.N, pair); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	cpu1, err := be.cpuTime()
	if err != nil {
		b.Fatal(err)
	}
	dp, rp := percentiles(slices.Concat(direct...)), percentiles(slices.Concat(relayed...))
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b.ReportMetric(us(dp.p50), "direct-p50-us")
	b.ReportMetric(us(dp.p99), "direct-p99-us")
	b.ReportMetric(us(rp.p50), "relay-p50-us")
	b.ReportMetric(us(rp.p99), "relay-p99-us")
	b.ReportMetric(us(rp.p50-dp.p50), "added-p50-us")
	b.ReportMetric(us(cpu1-cpu0)/float64(b.N), "backend-cpu-us/stream")
}

func BenchmarkRelayCPU(b *testing.B) {
	r := getRig(b)
	for _, n := range streamCounts {
		b.Run(fmt.Sprintf("streams=%d", n), func(b *testing.B) {
			for _, be := range r.round() {
				b.Run("backend="+be.name, func(b *testing.B) { benchCPU(b, r, be, n) })
			}
		})
	}
}

func benchCPU(b *testing.B, r *rig, be *backend, n int) {
	ctx := context.Background()
	prefix := codePrefix(longPrefixBytes)
	want := chunksOf(prefix)
	relays := dialRelays(b, r, be, n)
	var frames atomic.Int64
	stream := func(w, _ int) error {
		_, f, err := relays[w].stream(prefix)
		frames.Add(int64(f))
		return err
	}
	if err := workers(n, n, stream); err != nil {
		b.Fatal(err)
	}
	frames.Store(0)
	m0, err := be.mallocs(ctx)
	if err != nil {
		b.Fatal(err)
	}
	cpu0, err := be.cpuTime()
	if err != nil {
		b.Fatal(err)
	}
	sw0, err := be.switches()
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	b.ResetTimer()
	if err := workers(n, b.N, stream); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	elapsed := time.Since(start)
	sw1, _ := be.switches()
	cpu1, err1 := be.cpuTime()
	m1, err2 := be.mallocs(ctx)
	m2, err3 := be.mallocs(ctx) // a scrape's own allocations, taken off below
	if err := errors.Join(err1, err2, err3); err != nil {
		b.Fatal(err)
	}
	chunks := float64(b.N * want)
	if f := frames.Load(); f != int64(b.N*want) {
		b.Logf("%d delta frames for %d provider chunks (the backend merged some)", f, b.N*want)
	}
	b.ReportMetric(float64(cpu1-cpu0)/chunks, "cpu-ns/chunk")
	b.ReportMetric(float64(sw1-sw0)/chunks, "switches/chunk")
	b.ReportMetric((m1-m0-(m2-m1))/chunks, "allocs/chunk")
	b.ReportMetric(chunks/elapsed.Seconds(), "chunks/s")
	b.ReportMetric(float64(cpu1-cpu0)/float64(time.Second)/elapsed.Seconds(), "backend-cores")
}

type pcts struct{ p50, p99 time.Duration }

func percentiles(ds []time.Duration) pcts {
	if len(ds) == 0 {
		return pcts{}
	}
	slices.Sort(ds)
	at := func(q float64) time.Duration { return ds[min(len(ds)-1, int(q*float64(len(ds))))] }
	return pcts{p50: at(0.50), p99: at(0.99)}
}
