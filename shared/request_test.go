package wire

import (
	"bytes"
	"reflect"
	"testing"
)

func TestAppendRequestMatchesMarshal(t *testing.T) {
	full := ClientFrame{
		Type: TypeRequest, ID: "c1", Op: OpCompletion, Model: "m\"1", MaxTokens: 256, Stop: []Text{"\n", "\u2028<>&"},
		Completion: &Completion{
			Prefix: "func a() {\n\t\"x\\\" \x00\xff", Suffix: "\n}\n", Language: "go", Path: "dir/a.go",
			Snippets:  []Snippet{{Path: "b.go", Text: "func b() {}\n"}, {Path: "", Text: ""}},
			Multiline: true, N: 3,
		},
	}
	tests := []struct {
		name   string
		frame  ClientFrame
		wantOK bool
	}{
		{"every field", full, true},
		{"the least", ClientFrame{Type: TypeRequest, Completion: &Completion{}}, true},
		{"prefix and suffix", ClientFrame{Type: TypeRequest, ID: "c2", Op: OpCompletion, MaxTokens: -1, Completion: &Completion{Prefix: "a", Suffix: "b"}}, true},
		{"edit", ClientFrame{Type: TypeRequest, ID: "c3", Op: OpCompletion, Edit: &Edit{Instruction: "x"}, Completion: &Completion{}}, false},
		{"no completion", ClientFrame{Type: TypeRequest, ID: "c4"}, false},
		{"cancel", ClientFrame{Type: TypeCancel, ID: "c5"}, false},
		{"token", ClientFrame{Type: TypeRequest, Token: "t", Completion: &Completion{}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkRequest(t, tt.frame, tt.wantOK)
		})
	}
}

func checkRequest(t *testing.T, f ClientFrame, wantOK bool) {
	t.Helper()
	got, ok := AppendRequest([]byte("x"), f)
	if ok != wantOK {
		t.Fatalf("ok = %v, want %v", ok, wantOK)
	}
	if !ok {
		if string(got) != "x" {
			t.Errorf("dst changed to %q on refusal", got)
		}
		return
	}
	want, err := Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[1:], want) || got[0] != 'x' {
		t.Errorf("AppendRequest\ngot:  %s\nwant: x%s", got, want)
	}
}

func FuzzAppendRequest(f *testing.F) {
	f.Add("c1", "m", 64, "\n", "func a() {", "}\n", "go", "a.go", "b.go", "x := 1\n", true, 2)
	f.Fuzz(func(t *testing.T, id, model string, maxTokens int, stop, prefix, suffix, language, path, snipPath, snipText string, multiline bool, n int) {
		fr := ClientFrame{
			Type: TypeRequest, ID: id, Op: OpCompletion, Model: model, MaxTokens: maxTokens,
			Completion: &Completion{Prefix: Text(prefix), Suffix: Text(suffix), Language: language, Path: path, Multiline: multiline, N: n},
		}
		if stop != "" {
			fr.Stop = []Text{Text(stop)}
		}
		if snipPath != "" || snipText != "" {
			fr.Completion.Snippets = []Snippet{{Path: snipPath, Text: Text(snipText)}}
		}
		checkRequest(t, fr, true)
	})
}

// TestAppendRequestKnowsEveryField fills every field of a completion request by reflection, so
// that a field added to ClientFrame or Completion later fails here until AppendRequest writes it.
func TestAppendRequestKnowsEveryField(t *testing.T) {
	f := ClientFrame{Completion: &Completion{}}
	fill(reflect.ValueOf(&f).Elem())
	f.Type, f.Edit, f.Token = TypeRequest, nil, ""
	checkRequest(t, f, true)
}

// fill sets every settable field of v to a non-zero value.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Int, reflect.Int64:
		v.SetInt(2)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0))
		v.Set(s)
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		fill(v.Elem())
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	}
}
