package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite golden frames from what Marshal writes")

func goldens(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no golden frames in testdata/%s: %v", dir, err)
	}
	out := make(map[string][]byte, len(paths))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[p] = bytes.TrimSuffix(b, []byte{'\n'})
	}
	return out
}

// TestClientGoldens decodes each golden client frame, checks it is valid, and encodes it back
// to the same bytes.
func TestClientGoldens(t *testing.T) {
	for path, data := range goldens(t, "client") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			f, err := DecodeClient(data)
			if err != nil {
				t.Fatalf("DecodeClient: %v", err)
			}
			got, err := Marshal(f)
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if !bytes.Equal(got, data) {
				t.Errorf("round trip changed the frame\ngot:  %s\nwant: %s", got, data)
			}
		})
	}
}

// TestServerGoldens decodes each golden server frame and encodes it back to the same bytes.
func TestServerGoldens(t *testing.T) {
	for path, data := range goldens(t, "server") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			f, err := DecodeServer(data)
			if err != nil {
				t.Fatalf("DecodeServer: %v", err)
			}
			got, err := Marshal(f)
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if !bytes.Equal(got, data) {
				t.Errorf("round trip changed the frame\ngot:  %s\nwant: %s", got, data)
			}
			if f.Type == TypeDelta {
				if fast := AppendDelta(nil, f.ID, f.Index, []byte(f.Text)); !bytes.Equal(fast, data) {
					t.Errorf("AppendDelta\ngot:  %s\nwant: %s", fast, data)
				}
			}
		})
	}
}

// TestInvalidFrames checks each invalid frame is refused with the code its file name starts with.
func TestInvalidFrames(t *testing.T) {
	for path, data := range goldens(t, "invalid") {
		want := Code(strings.SplitN(filepath.Base(path), "-", 2)[0])
		t.Run(filepath.Base(path), func(t *testing.T) {
			_, err := DecodeClient(data)
			if err == nil {
				t.Fatal("DecodeClient accepted an invalid frame")
			}
			if got := CodeOf(err); got != want {
				t.Errorf("code = %s, want %s (%v)", got, want, err)
			}
		})
	}
}

func TestDecodeClientLimits(t *testing.T) {
	big := []byte(`{"type":"request","id":"c","op":"completion","completion":{"prefix":"` +
		strings.Repeat("a", MaxFrameBytes) + `"}}`)
	if _, err := DecodeClient(big); CodeOf(err) != CodeTooLarge {
		t.Errorf("oversized frame: got %v, want too_large", err)
	}
	stops := `["a","b","c","d","e","f","g","h","i"]`
	f, err := DecodeClient([]byte(`{"type":"request","id":"s1","op":"completion","stop":` + stops + `,"completion":{"prefix":"a"}}`))
	if CodeOf(err) != CodeBadRequest || f.ID != "s1" {
		t.Errorf("too many stop sequences: got id %q, err %v; want id s1 and bad_request", f.ID, err)
	}
}

// TestSuggestions: n is optional, 0 means 1, and values above MaxSuggestions are served as
// MaxSuggestions; a negative n is refused.
func TestSuggestions(t *testing.T) {
	tests := []struct {
		n    string // the member as sent; "" for none
		want int    // 0: refused with bad_request
	}{
		{"", 1}, {`,"n":0`, 1}, {`,"n":1`, 1}, {`,"n":2`, 2}, {`,"n":3`, 3}, {`,"n":4`, 3},
		{`,"n":1000`, 3}, {`,"n":null`, 1}, {`,"n":-1`, 0},
	}
	for _, tt := range tests {
		frame := `{"type":"request","id":"c","op":"completion","completion":{"prefix":"a"` + tt.n + `}}`
		f, err := DecodeClient([]byte(frame))
		if tt.want == 0 {
			if CodeOf(err) != CodeBadRequest || f.ID != "c" {
				t.Errorf("%s: got id %q, err %v; want id c and bad_request", frame, f.ID, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", frame, err)
		}
		if got := f.Completion.Suggestions(); got != tt.want {
			t.Errorf("%s: Suggestions() = %d, want %d", frame, got, tt.want)
		}
	}
}

// TestStreamIDs: ids with control characters, or that JSON decoding would alter (lone
// surrogates, invalid UTF-8 become U+FFFD), are refused with bad_request and not echoed; other
// Unicode is kept as sent.
func TestStreamIDs(t *testing.T) {
	tests := []struct {
		name, id string // id as it appears inside the JSON string
		want     string // the decoded id; "" when refused
	}{
		{"ascii", `c-1`, "c-1"},
		{"unicode", `流-é-1`, "流-é-1"},
		{"escaped unicode", `\u00e9`, "é"},
		{"quote", `a\"b`, `a"b`},
		{"nul", `c\u00001`, ""},
		{"lone surrogate", `c\ud8001`, ""},
		{"low surrogate", `\udc00`, ""},
		{"escape", `\u001b[31m`, ""},
		{"newline", `c\n1`, ""},
		{"tab", `c\t1`, ""},
		{"del", `c\u007f`, ""},
		{"c1 control", `c\u0085`, ""},
		{"replacement character", "c\ufffd", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, frame := range []string{
				`{"type":"request","id":"` + tt.id + `","op":"completion","completion":{"prefix":"a"}}`,
				`{"type":"cancel","id":"` + tt.id + `"}`,
			} {
				f, err := DecodeClient([]byte(frame))
				if tt.want != "" {
					if err != nil || f.ID != tt.want {
						t.Errorf("%s: got id %q, err %v; want id %q", frame, f.ID, err, tt.want)
					}
					continue
				}
				if CodeOf(err) != CodeBadRequest || f.ID != "" {
					t.Errorf("%s: got id %q, err %v; want bad_request and no id", frame, f.ID, err)
				}
			}
		})
	}
}

// TestErrorMessagesCarryNoContent makes sure a refused frame's message does not quote the
// content it carried.
func TestErrorMessagesCarryNoContent(t *testing.T) {
	const canary = "CANARY-7f3a"
	frames := []string{
		`{"type":"request","id":"c","op":"completion","completion":{"prefix":"` + canary + `"`,
		`{"type":"request","id":"c","op":"completion","max_tokens":"` + canary + `","completion":{"prefix":"a"}}`,
		`{"type":"request","id":"c","op":"edit","edit":{"selection":"` + canary + `"}}`,
		`{"type":"request","id":"c","op":"completion","completion":{"prefix":` + canary + `}}`,
		`{"type":"request","id":"c","op":"completion","completion":{"prefix":["` + canary + `"]}}`,
	}
	for _, fr := range frames {
		_, err := DecodeClient([]byte(fr))
		if err == nil {
			t.Fatalf("accepted %s", fr)
		}
		if strings.Contains(err.Error(), canary) {
			t.Errorf("error %q quotes content", err)
		}
	}
}

func TestTextRedacts(t *testing.T) {
	const canary = "CANARY-91bc"
	c := ClientFrame{Type: TypeRequest, ID: "c", Op: OpCompletion, Token: canary,
		Completion: &Completion{Prefix: canary, Suffix: canary}}
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	log.Debug("frame", "prefix", c.Completion.Prefix, "token", c.Token, "text", Text(canary))
	outputs := []string{
		fmt.Sprint(c.Completion.Prefix), fmt.Sprintf("%v %+v %#v %s %q %x", c.Token, c.Completion, c.Completion, c.Completion.Suffix, c.Completion.Prefix, c.Token),
		logs.String(),
	}
	for _, out := range outputs {
		if strings.Contains(out, canary) {
			t.Errorf("content printed: %s", out)
		}
	}
	if !strings.Contains(logs.String(), redacted) {
		t.Errorf("log %s does not say %s", logs.String(), redacted)
	}
}

func TestErrorFrame(t *testing.T) {
	tests := []struct {
		err  error
		want ServerFrame
	}{
		{&Error{Code: CodeRateLimited, Message: "busy", RetryAfterMS: 5},
			ServerFrame{Type: TypeError, ID: "x", Code: CodeRateLimited, Message: "busy", RetryAfterMS: 5}},
		{fmt.Errorf("wrapped: %w", Errorf(CodeUpstreamError, "boom")),
			ServerFrame{Type: TypeError, ID: "x", Code: CodeUpstreamError, Message: "boom"}},
		{errors.New("some internal detail"),
			ServerFrame{Type: TypeError, ID: "x", Code: CodeInternal, Message: "internal error"}},
		{&Error{Code: "made_up"}, ServerFrame{Type: TypeError, ID: "x", Code: CodeInternal}},
	}
	for _, tt := range tests {
		if got := ErrorFrame("x", tt.err); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ErrorFrame(%v) = %+v, want %+v", tt.err, got, tt.want)
		}
	}
}

func TestAppendDeltaMatchesMarshal(t *testing.T) {
	texts := []string{"", "plain", "\x00\x1f\x7f", "a\"b\\c", "\xff\xfe", "\u2028\u2029", "é😀", "a\xc3", "<>&"}
	for i, s := range texts {
		checkDelta(t, "id-1", i%MaxSuggestions, s)
	}
}

func checkDelta(t *testing.T, id string, index int, text string) {
	t.Helper()
	// encoding/json replaces each byte of invalid UTF-8 with U+FFFD, which Go 1.27 writes as
	// is and older releases as \ufffd. The reference replaces them itself (a []rune conversion
	// does it byte by byte too), so the comparison stays byte for byte on either toolchain.
	want, err := Marshal(ServerFrame{Type: TypeDelta, ID: id, Index: index, Text: Text(string([]rune(text)))})
	if err != nil {
		t.Fatal(err)
	}
	got := AppendDelta(nil, id, index, []byte(text))
	if text == "" { // Marshal omits an empty text; the fast path always writes it.
		var f ServerFrame
		if err := json.Unmarshal(got, &f); err != nil || f.Text != "" || f.ID != id || f.Index != index {
			t.Errorf("AppendDelta(%q) = %s", text, got)
		}
		return
	}
	if !bytes.Equal(got, want) {
		t.Errorf("AppendDelta(%q)\ngot:  %s\nwant: %s", text, got, want)
	}
}

func FuzzDecodeClient(f *testing.F) {
	for _, dir := range []string{"client", "invalid"} {
		paths, _ := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
		for _, p := range paths {
			b, _ := os.ReadFile(p)
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := DecodeClient(data)
		// The id is echoed in replies, on success and on error: it must be what the peer sent.
		if !utf8.ValidString(fr.ID) || !validID(fr.ID) {
			t.Fatalf("decoded id %q holds a control character or invalid UTF-8 (err %v)", fr.ID, err)
		}
		if err != nil {
			if !CodeOf(err).Known() {
				t.Fatalf("error without a known code: %v", err)
			}
			return
		}
		// A frame that decodes must survive a round trip unchanged.
		b, err := Marshal(fr)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeClient(b)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", b, err)
		}
		b2, err := Marshal(again)
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("round trip changed the frame: %s vs %s (%v)", b, b2, err)
		}
	})
}

func FuzzAppendDelta(f *testing.F) {
	f.Add("c1", 0, []byte("a + b"))
	f.Add("", 2, []byte("\xff\u2028\x00\""))
	f.Fuzz(func(t *testing.T, id string, index int, text []byte) {
		if id == "" || !utf8.ValidString(id) || len(text) == 0 || index < 0 {
			return
		}
		checkDelta(t, id, index, string(text))
	})
}
