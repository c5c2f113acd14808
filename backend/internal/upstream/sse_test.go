package upstream

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

type sseEvent struct{ Name, Data string }

// readAll reads every event of r with an sseReader limited to max.
func readAll(r io.Reader, max int) ([]sseEvent, error) { return readAllSize(r, max, 4096) }

// readAllSize is readAll with an sseReader whose buffer starts at size bytes.
func readAllSize(r io.Reader, max, size int) ([]sseEvent, error) {
	s := newSSEReaderSize(r, max, size)
	var out []sseEvent
	for {
		name, data, err := s.next()
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return out, err
		}
		out = append(out, sseEvent{string(name), string(data)})
	}
}

func TestSSE(t *testing.T) {
	long := strings.Repeat("x", 70<<10) // over bufio.Scanner's 64 KiB
	tests := []struct {
		name, in string
		want     []sseEvent
	}{
		{"lf", "data: a\n\ndata: b\n\n", []sseEvent{{"", "a"}, {"", "b"}}},
		{"crlf", "data: a\r\n\r\ndata: b\r\n\r\n", []sseEvent{{"", "a"}, {"", "b"}}},
		{"cr", "data: a\r\rdata: b\r\r", []sseEvent{{"", "a"}, {"", "b"}}},
		{"mixed endings", "data: a\r\n\rdata: b\n\r\n", []sseEvent{{"", "a"}, {"", "b"}}},
		{"event names", "event: ping\ndata: {}\n\ndata: x\n\n", []sseEvent{{"ping", "{}"}, {"", "x"}}},
		{"multi-line data", "data: a\ndata: b\ndata:\n\n", []sseEvent{{"", "a\nb\n"}}},
		{"no space after colon", "data:a\ndata:  b\n\n", []sseEvent{{"", "a\n b"}}},
		{"comments and other fields", ": hi\nid: 7\nretry: 10\nfoo\ndata: a\n\n", []sseEvent{{"", "a"}}},
		{"event without data is dropped", "event: x\n\ndata: a\n\n", []sseEvent{{"", "a"}}},
		{"empty data dispatches", "data\n\n", []sseEvent{{"", ""}}},
		{"blank lines only", "\n\n\r\n", nil},
		{"unterminated last event dropped", "data: a\n\ndata: b\n", []sseEvent{{"", "a"}}},
		{"unterminated last line dropped", "data: a\n\ndata: b", []sseEvent{{"", "a"}}},
		{"data then a long line", "data: a\nid: " + strings.Repeat("7", 100) + "\ndata: b\n\ndata: c\n\n", []sseEvent{{"", "a\nb"}, {"", "c"}}},
		{"line over 64 KiB", "data: " + long + "\n\ndata: [DONE]\n\n", []sseEvent{{"", long}, {"", "[DONE]"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, rd := range []struct {
				name string
				r    io.Reader
			}{
				{"whole", strings.NewReader(tt.in)},
				{"one byte", iotest.OneByteReader(strings.NewReader(tt.in))},
				{"half", iotest.HalfReader(strings.NewReader(tt.in))},
				{"small buffer", strings.NewReader(tt.in)},
			} {
				size := 4096
				if rd.name == "small buffer" {
					size = 3 // the buffer grows, and compacts around the data it holds
				}
				got, err := readAllSize(rd.r, MaxLineBytes, size)
				if err != nil {
					t.Fatalf("%s: %v", rd.name, err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("%s: got %.200q, want %.200q", rd.name, got, tt.want)
				}
			}
		})
	}
}

func TestSSELimits(t *testing.T) {
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"line at the limit", "data: " + strings.Repeat("x", 100-6) + "\n\n", true},
		{"line over the limit", "data: " + strings.Repeat("x", 100-5) + "\n\n", false},
		{"unterminated line over the limit", "data: " + strings.Repeat("x", 300), false},
		{"comment over the limit", ": " + strings.Repeat("x", 200) + "\ndata: a\n\n", false},
		{"event over the limit", strings.Repeat("data: "+strings.Repeat("x", 40)+"\n", 3) + "\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readAll(strings.NewReader(tt.in), 100)
			if tt.ok && err != nil {
				t.Fatalf("got %v, want no error", err)
			}
			if !tt.ok && !errors.Is(err, ErrFailed) {
				t.Fatalf("got %v, want ErrFailed", err)
			}
		})
	}
}

// TestSSEReaderError returns the reader's own error, not a clean end.
func TestSSEReaderError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("data: a\n\ndata: b"), iotest.ErrReader(boom))
	got, err := readAll(r, MaxLineBytes)
	if !errors.Is(err, boom) || len(got) != 1 {
		t.Fatalf("got %q, %v; want one event and boom", got, err)
	}
}

// refSSE is a simple reference parser: split into lines, then apply the format's rules.
func refSSE(in []byte, max int) ([]sseEvent, bool) {
	in = bytes.ReplaceAll(in, []byte("\r\n"), []byte("\n"))
	in = bytes.ReplaceAll(in, []byte("\r"), []byte("\n"))
	lines := bytes.Split(in, []byte("\n"))
	lines = lines[:len(lines)-1] // the last piece has no terminator
	var out []sseEvent
	var name, data []byte
	seen := false
	for _, l := range lines {
		if len(l) > max {
			return out, false
		}
		if len(l) == 0 {
			if seen {
				out = append(out, sseEvent{string(name), string(data)})
			}
			name, data, seen = nil, nil, false
			continue
		}
		if l[0] == ':' {
			continue
		}
		f, v, _ := bytes.Cut(l, []byte(":"))
		v = bytes.TrimPrefix(v, []byte(" "))
		switch string(f) {
		case "data":
			if seen {
				data = append(data, '\n')
			}
			data = append(data, v...)
			seen = true
			if len(data) > max {
				return out, false
			}
		case "event":
			name = append([]byte(nil), v...)
		}
	}
	if last := in[bytes.LastIndexByte(in, '\n')+1:]; len(last) > max {
		return out, false
	}
	return out, true
}

func FuzzSSE(f *testing.F) {
	f.Add([]byte("data: a\n\n"), uint8(3))
	f.Add([]byte("event: x\r\ndata: a\r\ndata: b\r\n\r\n: c\rdata\r\r"), uint8(1))
	f.Add([]byte("data: {\"choices\":[]}\n\ndata: [DONE]\n\n"), uint8(7))
	f.Add([]byte("data:"+strings.Repeat("y", 80)+"\n\n"), uint8(0))
	f.Fuzz(func(t *testing.T, in []byte, split uint8) {
		const max = 64
		want, wantOK := refSSE(in, max)
		var r io.Reader = bytes.NewReader(in)
		if split%2 == 1 {
			r = iotest.OneByteReader(r)
		}
		size := 4096
		if split&2 != 0 {
			size = 1 + int(split>>2)%16 // a buffer that grows, and compacts around an event's data
		}
		got, err := readAllSize(r, max, size)
		if err != nil && !errors.Is(err, ErrFailed) {
			t.Fatalf("unexpected error %v", err)
		}
		if (err == nil) != wantOK {
			t.Fatalf("error %v, reference ok %v", err, wantOK)
		}
		if len(got) == 0 && len(want) == 0 {
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
}
