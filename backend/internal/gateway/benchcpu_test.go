//go:build unix

package gateway

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	wire "github.com/codingplan/codingplan/shared"
)

// Environment of the client process of BenchmarkRelayCPU.
const (
	envRelayURL   = "CODINGPLAN_RELAY_CLIENT_URL"
	envRelayToken = "CODINGPLAN_RELAY_CLIENT_TOKEN"
)

// relayResult is what the client process reports on its last line.
type relayResult struct {
	Frames int   `json:"frames"`
	Text   int   `json:"text"`
	CPUNS  int64 `json:"cpu_ns"` // the client's CPU from the request to the done frame
}

// BenchmarkRelayCPU measures the CPU the server process spends per streamed chunk, with the
// websocket client in a separate process (this test binary, running TestRelayClientProcess) so
// that the process-wide CPU counters see only the server: the gateway, the fake provider and
// the runtime. server-ns/chunk is user+system CPU per chunk; client-ns/chunk the client's.
//
//   - burst: the provider emits chunks as fast as the relay takes them, so the writer merges
//     deltas and batches writes (frames/chunk < 1).
//   - burst-batch: the same, without merging: one frame per chunk, several frames per write.
//   - burst-single: neither merging nor batching: one frame and one write per chunk.
//   - paced: the provider waits 100 us before each chunk, like a model producing tokens one at
//     a time: each chunk goes out as its own frame with its own write (frames/chunk ~ 1). The
//     wait's timer wakeup counts, as the wakeup on a provider's socket would.
func BenchmarkRelayCPU(b *testing.B) {
	for _, bc := range []struct {
		name         string
		gap          time.Duration
		batch, merge int
	}{
		{"burst", 0, maxBatch, maxMerge},
		{"burst-batch", 0, maxBatch, 0},
		{"burst-single", 0, 1, 0},
		{"paced", 100 * time.Microsecond, maxBatch, maxMerge},
	} {
		b.Run(bc.name, func(b *testing.B) {
			defer func(batch, merge int) { maxBatch, maxMerge = batch, merge }(maxBatch, maxMerge)
			maxBatch, maxMerge = bc.batch, bc.merge
			h := newHarness(b, setup{cfg: Config{SlowConsumer: time.Minute}, deps: Deps{Router: routeTo(chunkProvider(b.N, bc.gap))}})
			exe, err := os.Executable()
			if err != nil {
				b.Fatal(err)
			}
			cmd := exec.Command(exe, "-test.run=^TestRelayClientProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), envRelayURL+"="+h.url, envRelayToken+"="+h.token(nil))
			cmd.Stderr = os.Stderr
			stdin, err := cmd.StdinPipe()
			if err != nil {
				b.Fatal(err)
			}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				b.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			defer cmd.Wait()
			defer stdin.Close()
			lines := bufio.NewScanner(stdout)
			if !lines.Scan() || lines.Text() != "ready" {
				b.Fatalf("client process: %q %v", lines.Text(), lines.Err())
			}
			b.ResetTimer()
			before := cpuTime(b)
			if _, err := fmt.Fprintln(stdin, "go"); err != nil {
				b.Fatal(err)
			}
			if !lines.Scan() {
				b.Fatalf("client process: %v", lines.Err())
			}
			server := cpuTime(b) - before
			b.StopTimer()
			var res relayResult
			if err := json.Unmarshal(lines.Bytes(), &res); err != nil {
				b.Fatalf("client process said %q", lines.Text())
			}
			if want := b.N * len(benchChunk); res.Text != want {
				b.Fatalf("relayed %d bytes of text, want %d", res.Text, want)
			}
			n := float64(b.N)
			b.ReportMetric(float64(server.Nanoseconds())/n, "server-ns/chunk")
			b.ReportMetric(float64(res.CPUNS)/n, "client-ns/chunk")
			b.ReportMetric(float64(res.Frames)/n, "frames/chunk")
		})
	}
}

// TestRelayClientProcess is BenchmarkRelayCPU's client; it does nothing in a normal test run.
// It connects, says "ready", waits for "go" on stdin, streams one request and prints a
// relayResult line.
func TestRelayClientProcess(t *testing.T) {
	url := os.Getenv(envRelayURL)
	if url == "" {
		t.Skip("the client process of BenchmarkRelayCPU")
	}
	c, _, err := websocket.DefaultDialer.Dial(url, http.Header{"Authorization": {"Bearer " + os.Getenv(envRelayToken)}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, _, err := c.ReadMessage(); err != nil { // hello
		t.Fatal(err)
	}
	fmt.Println("ready")
	if in := bufio.NewScanner(os.Stdin); !in.Scan() || in.Text() != "go" {
		t.Fatalf("stdin: %q", in.Text())
	}
	before := cpuTime(t)
	req, _ := wire.Marshal(wire.ClientFrame{Type: wire.TypeRequest, ID: "c1", Op: wire.OpCompletion,
		Completion: &wire.Completion{Prefix: "func add(a, b int) int {\n\treturn ", Language: "go"}})
	if err := c.WriteMessage(websocket.TextMessage, req); err != nil {
		t.Fatal(err)
	}
	frames, text := readStream(t, c, "c1")
	line, _ := json.Marshal(relayResult{Frames: frames, Text: text, CPUNS: (cpuTime(t) - before).Nanoseconds()})
	fmt.Println(string(line))
}

// cpuTime is this process's user plus system CPU time so far.
func cpuTime(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
