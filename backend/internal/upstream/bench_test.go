package upstream

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/codingplan/codingplan/backend/internal/upstream/providertest"
)

// benchChunks are the pieces of a realistic completion: short tokens of code.
var benchChunks = func() []string {
	toks := []string{"\n", "\t", "if", " err", " !=", " nil", " {", "\n\t\t", "return", " fmt", ".Errorf", "(\"", "load",
		" %s", ":", " %w", "\",", " path", ",", " err", ")", "\n\t", "}"}
	var out []string
	for len(out) < 500 {
		out = append(out, toks...)
	}
	return out[:500]
}()

// recordStream returns the bytes of a chat completions stream of benchChunks, as the fake
// (which writes what the real API writes) sends them.
func recordStream(b testing.TB, kind string) []byte {
	b.Helper()
	srv := newServer(b)
	srv.SetDefault(providertest.Reply{Chunks: benchChunks})
	path, body := "/v1/chat/completions", `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}]}`
	if kind == KindAnthropic {
		path, body = "/v1/messages", `{"model":"m","stream":true,"max_tokens":500,"messages":[{"role":"user","content":"x"}]}`
	}
	resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// perChunk reports CPU time and allocations per chunk of a benchmark that relays chunks
// chunks per op.
func perChunk(b *testing.B, chunks int, run func()) {
	b.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cpu0 := cpuTime()
	b.ResetTimer()
	for b.Loop() {
		run()
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	runtime.ReadMemStats(&after)
	n := float64(b.N * chunks)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/chunk")
	b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/chunk")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/n, "allocs/chunk")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/n, "B/chunk")
}

// cpuTime is the CPU time (user and system) the process used so far: unlike wall time, it
// does not count time spent waiting for a CPU on a busy machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRelay measures the relay's cost per streamed chunk: SSE parsing, decoding the
// fields it needs, the fence filter and the sink call, from an in-memory stream, against
// baselines that decode each event with encoding/json as this package did before (legacy),
// only split lines (bufio.Reader), or do what a naive relay does (Scanner, a full JSON decode
// of every chunk, the answer concatenated).
func BenchmarkRelay(b *testing.B) {
	codecs := map[string]func() codec{
		"relay/" + KindOpenAIChat:  func() codec { return &openAIChat{} },
		"legacy/" + KindOpenAIChat: func() codec { return &legacyOpenAIChat{} },
		"relay/" + KindAnthropic:   func() codec { return &anthropic{} },
		"legacy/" + KindAnthropic:  func() codec { return &legacyAnthropic{} },
	}
	for _, kind := range []string{KindOpenAIChat, KindAnthropic} {
		stream := recordStream(b, kind)
		for _, impl := range []string{"relay/", "legacy/"} {
			b.Run(impl+kind, func(b *testing.B) {
				benchRelay(b, stream, codecs[impl+kind])
			})
		}
	}
	stream := recordStream(b, KindOpenAIChat)
	b.Run("baseline-lines/"+KindOpenAIChat, func(b *testing.B) {
		rd := bytes.NewReader(stream)
		br := bufio.NewReader(rd)
		perChunk(b, len(benchChunks), func() {
			rd.Reset(stream)
			br.Reset(rd)
			for {
				if _, err := br.ReadSlice('\n'); err != nil {
					break
				}
			}
		})
	})
	b.Run("naive/"+KindOpenAIChat, func(b *testing.B) {
		rd := bytes.NewReader(stream)
		perChunk(b, len(benchChunks), func() {
			rd.Reset(stream)
			sc := bufio.NewScanner(rd)
			var answer string
			for sc.Scan() {
				data, ok := bytes.CutPrefix(sc.Bytes(), []byte("data: "))
				if !ok || string(data) == "[DONE]" {
					continue
				}
				var chunk map[string]any
				if err := json.Unmarshal(data, &chunk); err != nil {
					b.Fatal(err)
				}
				if cs, _ := chunk["choices"].([]any); len(cs) > 0 {
					delta, _ := cs[0].(map[string]any)["delta"].(map[string]any)
					s, _ := delta["content"].(string)
					answer += s
				}
			}
			if len(answer) == 0 {
				b.Fatal("nothing read")
			}
		})
	})
}

// benchRelay relays stream from memory through a new codec per op, as Stream does.
func benchRelay(b *testing.B, stream []byte, newCodec func() codec) {
	rd := bytes.NewReader(stream)
	sink := func(int, []byte) error { return nil }
	perChunk(b, len(benchChunks), func() {
		rd.Reset(stream)
		dog := startWatchdog(DefaultTimeouts, func(error) {})
		st := &streamState{out: sink, dog: dog}
		st.out = newFenceStrippers(1, sink).write
		c := newCodec()
		if err := st.relay(newSSEReader(rd, MaxLineBytes), c); err != nil {
			b.Fatal(err)
		}
		c.clear()
		dog.stop()
		if st.outBytes == 0 || !st.usageSeen {
			b.Fatal("nothing relayed")
		}
	})
}

// BenchmarkTTFT measures time to first token through a provider to the fake over loopback
// HTTP, and reading the same stream with a plain HTTP client up to its first text chunk,
// at 1, 16 and 128 concurrent streams. Each worker alternates the two, so both see the same
// machine load; it reports the p50 and p90 of each and the p50 the relay adds. One op is
// one stream of 20 chunks, read to its end.
func BenchmarkTTFT(b *testing.B) {
	const chunks = 20
	for _, conc := range []int{1, 16, 128} {
		srv := newServer(b)
		srv.SetDefault(providertest.Reply{Chunks: benchChunks[:chunks]})
		p := newProvider(b, srv, KindOpenAIChat, "m", nil)
		req := completion()
		relay := func() (time.Duration, error) {
			start := time.Now()
			var first time.Duration
			_, err := p.Stream(context.Background(), req, func(int, []byte) error {
				if first == 0 {
					first = time.Since(start)
				}
				return nil
			})
			return first, err
		}
		// The same request body the provider sends, read raw.
		body, _, _ := (&openAIChat{}).encode(req, &ModelConfig{Model: "m", MaxTokens: 256})
		client := &http.Client{Transport: NewTransport(time.Second, 0)}
		b.Cleanup(client.CloseIdleConnections)
		direct := func() (time.Duration, error) {
			start := time.Now()
			resp, err := client.Post(srv.URL+"/v1/chat/completions", "application/json", bytes.NewReader(body))
			if err != nil {
				return 0, err
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			var first time.Duration
			data := 0
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					break
				}
				// The first data line is the role chunk, the second the first text.
				if bytes.HasPrefix(line, []byte("data: ")) {
					if data++; data == 2 {
						first = time.Since(start)
					}
				}
			}
			return first, nil
		}
		b.Run(fmt.Sprintf("streams=%d", conc), func(b *testing.B) {
			runTTFT(b, conc, relay, direct)
		})
	}
}

// runTTFT runs b.N streams on conc workers, each alternating relay and direct, and reports
// the percentiles of the times to first token they return.
func runTTFT(b *testing.B, conc int, relay, direct func() (time.Duration, error)) {
	var mu sync.Mutex
	var times [2][]time.Duration
	work := make(chan struct{})
	var wg sync.WaitGroup
	for w := range conc {
		wg.Go(func() {
			n := w
			for range work {
				i := n % 2
				n++
				d, err := [2]func() (time.Duration, error){relay, direct}[i]()
				if err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				times[i] = append(times[i], d)
				mu.Unlock()
			}
		})
	}
	b.ResetTimer()
	for b.Loop() {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
	b.StopTimer()
	pct := func(ds []time.Duration, p int) float64 {
		if len(ds) == 0 {
			return 0
		}
		slices.Sort(ds)
		return float64(ds[len(ds)*p/100]) / 1e3
	}
	b.ReportMetric(pct(times[0], 50), "relay-p50-us")
	b.ReportMetric(pct(times[0], 90), "relay-p90-us")
	b.ReportMetric(pct(times[1], 50), "direct-p50-us")
	b.ReportMetric(pct(times[1], 90), "direct-p90-us")
	b.ReportMetric(pct(times[0], 50)-pct(times[1], 50), "added-p50-us")
}
