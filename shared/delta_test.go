package wire

import (
	"bytes"
	"testing"
)

func TestDecodeDelta(t *testing.T) {
	tests := []struct {
		name, data   string
		wantOK       bool
		id, wantText string
	}{
		{"plain", `{"type":"delta","id":"c1","text":"a + b"}`, true, "c1", "a + b"},
		{"escapes", `{"type":"delta","id":"c1","text":"\"\\\/\b\f\n\r\t"}`, true, "c1", "\"\\/\b\f\n\r\t"},
		{"unicode escapes", `{"type":"delta","id":"c1","text":"\u00e9\u2028x\u0000"}`, true, "c1", "é\u2028x\x00"},
		{"utf-8", `{"type":"delta","id":"c1","text":"é😀"}`, true, "c1", "é😀"},
		{"empty text", `{"type":"delta","id":"c1","text":""}`, true, "c1", ""},
		{"surrogate pair", `{"type":"delta","id":"c1","text":"\ud83d\ude00"}`, true, "c1", "😀"},
		{"lone surrogate", `{"type":"delta","id":"c1","text":"\ud83dx"}`, true, "c1", "\ufffdx"},
		{"escaped quote at the end", `{"type":"delta","id":"c1","text":"a\""}`, true, "c1", "a\""},
		{"two strings", `{"type":"delta","id":"c1","text":"a","b":"c"}`, false, "", ""},
		{"other order", `{"id":"c1","type":"delta","text":"a"}`, false, "", ""},
		{"space", `{"type":"delta","id":"c1", "text":"a"}`, false, "", ""},
		{"more fields", `{"type":"delta","id":"c1","text":"a","x":1}`, false, "", ""},
		{"done", `{"type":"done","id":"c1"}`, false, "", ""},
		{"another suggestion", `{"type":"delta","id":"c1","index":1,"text":"a"}`, false, "", ""},
		{"escaped id", `{"type":"delta","id":"c\u0031","text":"a"}`, false, "", ""},
		{"empty id", `{"type":"delta","id":"","text":"a"}`, false, "", ""},
		{"control character", "{\"type\":\"delta\",\"id\":\"c1\",\"text\":\"a\nb\"}", false, "", ""},
		{"bad escape", `{"type":"delta","id":"c1","text":"\x"}`, false, "", ""},
		{"short unicode escape", `{"type":"delta","id":"c1","text":"\u12"}`, false, "", ""},
		{"invalid utf-8", "{\"type\":\"delta\",\"id\":\"c1\",\"text\":\"\xff\"}", false, "", ""},
		{"unterminated", `{"type":"delta","id":"c1","text":"abc`, false, "", ""},
		{"trailing", `{"type":"delta","id":"c1","text":"a"} `, false, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, text, ok := DecodeDelta([]byte(tt.data))
			if ok != tt.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tt.wantOK)
			}
			if !ok {
				return
			}
			if string(id) != tt.id || string(text) != tt.wantText {
				t.Errorf("got id %q text %q, want %q %q", id, text, tt.id, tt.wantText)
			}
			checkDecodeDelta(t, []byte(tt.data))
		})
	}
}

// checkDecodeDelta checks that what DecodeDelta accepts, DecodeServer decodes the same.
func checkDecodeDelta(t *testing.T, data []byte) {
	t.Helper()
	id, text, ok := DecodeDelta(data)
	if !ok {
		return
	}
	f, err := DecodeServer(data)
	if err != nil {
		t.Fatalf("DecodeDelta accepted %q, DecodeServer: %v", data, err)
	}
	if f.Type != TypeDelta || f.ID != string(id) || f.Index != 0 || string(f.Text) != string(text) {
		t.Fatalf("%q: DecodeDelta gives id %q text %q, DecodeServer %+v", data, id, text, f)
	}
}

func FuzzDecodeDelta(f *testing.F) {
	f.Add("c1", []byte("a + b"))
	f.Add("c2", []byte("\xff\u2028\x00\"\\\n"))
	f.Fuzz(func(t *testing.T, id string, text []byte) {
		// What the backend writes comes back unchanged (invalid UTF-8 as U+FFFD).
		frame := AppendDelta(nil, id, 0, text)
		checkDecodeDelta(t, frame)
		if gotID, got, ok := DecodeDelta(frame); ok && (string(gotID) != string([]rune(id)) || !bytes.Equal(got, []byte(string([]rune(string(text)))))) {
			t.Fatalf("round trip of %q %q: %q %q", id, text, gotID, got)
		}
		// Any bytes: nothing DecodeDelta accepts differs from DecodeServer.
		checkDecodeDelta(t, text)
	})
}
