package server

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/codingplan/codingplan/lsp/internal/complete"
	wire "github.com/codingplan/codingplan/shared"
)

// benchDoc is the document the benchmarks complete in; its cursor line changes every iteration,
// so every request is a cache miss.
const benchDoc = "package bench\n\nimport \"fmt\"\n\n// compute mixes two numbers.\nfunc compute(a, b int) int {\n\treturn a*b + 1\n}\n\nfunc step(total int) {\n\tvalue0 := compute(\n\tfmt.Println(total)\n}\n"

// benchClient drives a server over OS pipes, as an editor does, with frames it builds itself:
// what it costs is the same in every run, so the numbers are the server's.
type benchClient struct {
	w   *os.File
	r   *bufio.Reader
	buf bytes.Buffer
}

func (c *benchClient) send(body string) {
	c.buf.Reset()
	fmt.Fprintf(&c.buf, "Content-Length: %d\r\n\r\n%s", len(body), body)
	if _, err := c.w.Write(c.buf.Bytes()); err != nil {
		panic(err)
	}
}

// readReply reads messages until the response to id and returns it.
func (c *benchClient) readReply(id string) []byte {
	m1, m2 := []byte(`"id":`+id+`,`), []byte(`"id":`+id+`}`)
	for {
		n := -1
		for {
			line, err := c.r.ReadString('\n')
			if err != nil {
				panic(err)
			}
			line = strings.TrimRight(line, "\r\n")
			if line == "" {
				break
			}
			if v, ok := strings.CutPrefix(line, "Content-Length: "); ok {
				n, _ = strconv.Atoi(v)
			}
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(c.r, body); err != nil {
			panic(err)
		}
		if !bytes.Contains(body, []byte(`"method"`)) && (bytes.Contains(body, m1) || bytes.Contains(body, m2)) {
			return body
		}
	}
}

// startBench runs a server with the real completion engine over streamer, initialized and with
// the benchmark document open.
func startBench(b *testing.B, streamer complete.Streamer) *benchClient {
	b.Helper()
	sr, cw, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	cr, sw, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	backend := &fakeBackend{stream: streamer.Stream}
	s := New(Config{Backend: backend, Engine: complete.New(complete.Config{}, streamer, nil)}, nil)
	rwc := struct {
		io.Reader
		io.Writer
		io.Closer
	}{sr, sw, closerFunc(func() error { sr.Close(); return sw.Close() })}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background(), rwc) }()
	c := &benchClient{w: cw, r: bufio.NewReaderSize(cr, 64<<10)}
	b.Cleanup(func() {
		c.send(`{"jsonrpc":"2.0","method":"exit"}`)
		<-done
		cw.Close()
		cr.Close()
	})
	c.send(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"capabilities":{"textDocument":{"inlineCompletion":{}}},` +
		`"clientInfo":{"name":"bench"},"rootUri":"file:///w","initializationOptions":{"codingplan":{"debounceMs":0,"token":"t"}}}}`)
	c.readReply("0")
	c.send(`{"jsonrpc":"2.0","method":"initialized","params":{}}`)
	c.send(`{"jsonrpc":"2.0","method":"textDocument/didOpen","params":{"textDocument":{"uri":"file:///w/a.go","languageId":"go","version":1,"text":` +
		strconv.Quote(benchDoc) + `}}}`)
	return c
}

// StreamEach answers suggestion i with "total, i+1)".
func (instantStreamer) StreamEach(_ context.Context, req wire.ClientFrame, onDelta func(int, []byte)) (wire.ServerFrame, error) {
	for i := range req.Completion.Suggestions() {
		onDelta(i, []byte("total, "+strconv.Itoa(i+1)+")"))
	}
	return wire.ServerFrame{Type: wire.TypeDone}, nil
}

// instantStreamer answers every request at once with one delta.
type instantStreamer struct{}

func (instantStreamer) Stream(_ context.Context, _ wire.ClientFrame, onDelta func([]byte)) (wire.ServerFrame, error) {
	onDelta([]byte("total, 1)"))
	return wire.ServerFrame{Type: wire.TypeDone}, nil
}

// BenchmarkInlineMiss is one keystroke's worth of the server's own work: a didChange that makes
// a new context, then an inline completion request that misses the cache, answered by an
// instant backend, to the reply read back.
func BenchmarkInlineMiss(b *testing.B) { benchMiss(b, 2, "total, 1)") }

// BenchmarkInlineInvoked is a miss the user asked for: three suggestions from one request
// (suggestion cycling), beside BenchmarkInlineMiss's one.
func BenchmarkInlineInvoked(b *testing.B) { benchMiss(b, 1, "total, 3)") }

func benchMiss(b *testing.B, trigger int, want string) {
	c := startBench(b, instantStreamer{})
	const line = 10
	prev := len("\tvalue0 := compute(")
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		text := "\tvalue" + strconv.Itoa(i+1) + " := compute("
		c.send(`{"jsonrpc":"2.0","method":"textDocument/didChange","params":{"textDocument":{"uri":"file:///w/a.go","version":` +
			strconv.Itoa(i+2) + `},"contentChanges":[{"range":{"start":{"line":10,"character":0},"end":{"line":10,"character":` +
			strconv.Itoa(prev) + `}},"text":"` + strings.ReplaceAll(text, "\t", `\t`) + `"}]}}`)
		prev = len(text)
		id := strconv.Itoa(i + 1)
		c.send(`{"jsonrpc":"2.0","id":` + id + `,"method":"textDocument/inlineCompletion","params":{"textDocument":{"uri":"file:///w/a.go"},` +
			`"position":{"line":` + strconv.Itoa(line) + `,"character":` + strconv.Itoa(prev) + `},"context":{"triggerKind":` + strconv.Itoa(trigger) + `}}}`)
		body := c.readReply(id)
		if !bytes.Contains(body, []byte(want)) {
			b.Fatalf("reply without the suggestion: %s", body)
		}
	}
}

// BenchmarkInlineHit is a request the cache answers.
func BenchmarkInlineHit(b *testing.B) {
	c := startBench(b, instantStreamer{})
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		id := strconv.Itoa(i + 1)
		c.send(`{"jsonrpc":"2.0","id":` + id + `,"method":"textDocument/inlineCompletion","params":{"textDocument":{"uri":"file:///w/a.go"},` +
			`"position":{"line":10,"character":19},"context":{"triggerKind":2}}}`)
		c.readReply(id)
	}
}
