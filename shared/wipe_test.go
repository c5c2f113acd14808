package wire

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzTextUnmarshal checks that Text decodes every JSON string as encoding/json decodes a
// string.
func FuzzTextUnmarshal(f *testing.F) {
	for _, s := range []string{`""`, `"a"`, `"\u00e9\n\t\\\"\/"`, `"\ud83d\ude42"`, `"\ud83d x"`, `"\ude42\ud83d"`,
		`"\ud83d\u0041"`, "\"\xff\xfe\"", `"é🙂"`, `null`, `12`, `[1]`, `{"a":1}`, `true`, `"\u2028"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var want string
		wantErr := json.Unmarshal([]byte(in), &want)
		var got Text
		gotErr := json.Unmarshal([]byte(in), &got)
		if (wantErr == nil) != (gotErr == nil) {
			t.Fatalf("%q: error %v, encoding/json's %v", in, gotErr, wantErr)
		}
		if wantErr == nil && string(got) != want {
			t.Fatalf("%q: got %q, want %q", in, got, want)
		}
	})
}

func TestWipe(t *testing.T) {
	frame := `{"type":"request","id":"a","op":"edit","stop":["\n\nx"],"edit":{"instruction":"do \"it\"","selection":"sel",` +
		`"prefix":"p","suffix":"s","diagnostics":["d1","d2"]}}`
	f, err := DecodeClient([]byte(frame))
	if err != nil {
		t.Fatal(err)
	}
	e := f.Edit
	texts := []string{string(e.Instruction), string(e.Selection), string(e.Prefix), string(e.Suffix),
		string(e.Diagnostics[0]), string(e.Diagnostics[1]), string(f.Stop[0])}
	if texts[0] != `do "it"` || texts[6] != "\n\nx" {
		t.Fatalf("decoded %q", texts)
	}
	f.Wipe()
	for i, s := range texts {
		if strings.Trim(s, "\x00") != "" {
			t.Errorf("text %d still reads %q after Wipe", i, s)
		}
	}
	if e.Instruction != "" || f.Stop[0] != "" {
		t.Errorf("Wipe left the fields set")
	}
	f.Wipe() // twice is harmless
}
