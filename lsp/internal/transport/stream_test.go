package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"

	"go.lsp.dev/jsonrpc2"
)

// pipe is a Stream's byte stream for tests: in is read, out collects what is written.
type pipe struct {
	io.Reader
	out bytes.Buffer
}

func (p *pipe) Write(b []byte) (int, error) { return p.out.Write(b) }
func (p *pipe) Close() error                { return nil }

func frame(body string) string {
	return "Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

// frames splits what a Stream wrote into message bodies, checking each header.
func frames(t *testing.T, out string) []string {
	t.Helper()
	var bodies []string
	for out != "" {
		head, rest, ok := strings.Cut(out, "\r\n\r\n")
		n, err := strconv.Atoi(strings.TrimPrefix(head, "Content-Length: "))
		if !ok || err != nil || n > len(rest) {
			t.Fatalf("bad frame %q", out)
		}
		bodies = append(bodies, rest[:n])
		out = rest[n:]
	}
	return bodies
}

func TestParseID(t *testing.T) {
	tests := []struct {
		raw     string
		lenient bool
		want    jsonrpc2.ID
		ok      bool
	}{
		{"7", false, jsonrpc2.NewNumberID(7), true},
		{"99999999999", false, jsonrpc2.NewNumberID(99999999999), true},
		{"7.0", false, jsonrpc2.ID{}, false},
		{"7.0", true, jsonrpc2.NewNumberID(7), true},
		{"7e0", true, jsonrpc2.NewNumberID(7), true},
		{"7.5", true, jsonrpc2.ID{}, false},
		{`"7"`, false, jsonrpc2.NewStringID("7"), true},
		{`"a b"`, false, jsonrpc2.NewStringID("a b"), true},
		{" 12 ", false, jsonrpc2.NewNumberID(12), true},
		{"{}", true, jsonrpc2.ID{}, false},
		{"null", true, jsonrpc2.ID{}, false},
	}
	for _, tt := range tests {
		got, ok := ParseID(json.RawMessage(tt.raw), tt.lenient)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseID(%s, %v) = %v %v, want %v %v", tt.raw, tt.lenient, got, ok, tt.want, tt.ok)
		}
	}
}

// TestRead: messages that are not JSON-RPC are answered and skipped; an oversized one is
// skipped without being read into memory; blank lines between messages are tolerated.
func TestRead(t *testing.T) {
	good := `{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":1}}`
	in := frame(`not json`) + "\r\n" + frame(`{"jsonrpc":"1.0","id":7,"method":"x"}`) +
		frame(`{"jsonrpc":"2.0","id":{"a":1},"method":"x"}`) + frame(`[1]`) +
		"Content-Length: " + strconv.Itoa(MaxMessageBytes+1) + "\r\n\r\n" + strings.Repeat(" ", MaxMessageBytes+1) +
		frame(good)
	p := &pipe{Reader: strings.NewReader(in)}
	s := NewStream(p, nil)
	msg, _, err := s.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	call, ok := msg.(*jsonrpc2.Call)
	if !ok || call.Method() != "x" || call.ID() != jsonrpc2.NewNumberID(1) || string(call.Params()) != `{"a":1}` {
		t.Fatalf("read %#v", msg)
	}
	want := []string{
		`"id":null,"error":{"code":-32700,"message":"parse error: the message is not valid JSON"}`,
		`"id":7,"error":{"code":-32600,"message":"invalid request: not a JSON-RPC 2.0 message (jsonrpc must be \"2.0\")"}`,
		`"id":null,"error":{"code":-32600,"message":"invalid request: the id must be a string or an integer"}`,
		`"id":null,"error":{"code":-32600,"message":"invalid request: a message must be a JSON object"}`,
		`"id":null,"error":{"code":-32600,"message":"message of 67108865 bytes is over the limit of 67108864"}`,
	}
	got := frames(t, p.out.String())
	if len(got) != len(want) {
		t.Fatalf("wrote %q", got)
	}
	for i := range want {
		var v any
		if json.Unmarshal([]byte(got[i]), &v) != nil || !strings.Contains(got[i], want[i]) {
			t.Errorf("reply %d: %s\nwant it to hold %s", i, got[i], want[i])
		}
	}
	if _, _, err := s.Read(context.Background()); err != io.EOF {
		t.Errorf("at the end: %v, want io.EOF", err)
	}
}

// TestFraming: broken framing ends the stream with ErrFraming, and the editor's log is told.
func TestFraming(t *testing.T) {
	tests := []struct{ name, in string }{
		{"not a header", "garbage\r\n\r\n{}"},
		{"bad length", "Content-Length: x\r\n\r\n"},
		{"two lengths", "Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}"},
		{"no length", "Content-Type: x\r\n\r\n{}"},
		{"long header", "X: " + strings.Repeat("a", 5000) + "\r\n\r\n"},
		{"ends in headers", "Content-Length: 2\r\n"},
		{"ends in body", "Content-Length: 20\r\n\r\n{}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &pipe{Reader: strings.NewReader(tt.in)}
			_, _, err := NewStream(p, nil).Read(context.Background())
			if !errors.Is(err, ErrFraming) {
				t.Fatalf("err %v, want ErrFraming", err)
			}
			got := frames(t, p.out.String())
			if len(got) != 1 || !strings.Contains(got[0], `"method":"window/logMessage"`) || !strings.Contains(got[0], "codingplan-lsp: stopping") {
				t.Errorf("wrote %q", got)
			}
		})
	}
}

// TestWrite: a message goes out as one frame, and the trace sees it; the codec encodes results.
func TestWrite(t *testing.T) {
	var traced []string
	p := &pipe{Reader: strings.NewReader("")}
	s := NewStream(p, func(dir string, body []byte) { traced = append(traced, dir+" "+string(body)) })
	result, err := Codec{}.Marshal(map[string]int{"a": 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(context.Background(), jsonrpc2.NewResponse(jsonrpc2.NewNumberID(3), result, nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(context.Background(), jsonrpc2.NewResponse(jsonrpc2.NewStringID("a\"b"), nil, jsonrpc2.NewError(jsonrpc2.InvalidParams, `bad "x"`))); err != nil {
		t.Fatal(err)
	}
	got := frames(t, p.out.String())
	want := []string{
		`{"jsonrpc":"2.0","id":3,"result":{"a":1}}`,
		`{"jsonrpc":"2.0","id":"a\"b","error":{"code":-32602,"message":"bad \"x\""}}`,
	}
	for i := range want {
		var a, b any
		if len(got) != len(want) || json.Unmarshal([]byte(got[i]), &a) != nil || json.Unmarshal([]byte(want[i]), &b) != nil ||
			!jsonEqual(a, b) {
			t.Fatalf("wrote %q\nwant %q", got, want)
		}
	}
	if len(traced) != 2 || !strings.HasPrefix(traced[0], "send {") {
		t.Errorf("traced %q", traced)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func TestParseLength(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"0", 0, true}, {"12", 12, true}, {"9223372036854775807", 1<<63 - 1, true},
		{"9223372036854775808", 0, false}, {"99999999999999999999", 0, false}, {"", 0, false}, {"1a", 0, false}, {"-1", 0, false},
	}
	for _, tt := range tests {
		if got, ok := parseLength([]byte(tt.in)); got != tt.want || ok != tt.ok {
			t.Errorf("parseLength(%q) = %d %v, want %d %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
