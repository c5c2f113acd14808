package config

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestEnable(t *testing.T) {
	for _, tt := range []struct {
		raw    string
		lang   string
		forced bool
		want   bool
		any    bool
	}{
		{`true`, "go", false, true, true},
		{`false`, "go", false, false, false},
		{`false`, "go", true, true, false},
		{`{"*": true, "plaintext": false}`, "go", false, true, true},
		{`{"*": true, "plaintext": false}`, "plaintext", false, false, true},
		{`{"*": true, "plaintext": false}`, "plaintext", true, false, true},
		{`{"*": false, "python": true}`, "python", false, true, true},
		{`{"*": false, "python": true}`, "go", false, false, true},
		{`{"*": false, "python": true}`, "go", true, true, true},
		{`{"markdown": false}`, "go", false, true, true},
		{`{"markdown": false}`, "markdown", false, false, true},
		{`{}`, "go", false, true, true},
	} {
		s, err := Merge(Default(), json.RawMessage(`{"enable":`+tt.raw+`}`))
		if err != nil {
			t.Fatalf("enable %s: %v", tt.raw, err)
		}
		if got := s.Enable.For(tt.lang, tt.forced); got != tt.want {
			t.Errorf("enable %s: For(%q, forced %v) = %v, want %v", tt.raw, tt.lang, tt.forced, got, tt.want)
		}
		if got := s.Enable.Any(); got != tt.any {
			t.Errorf("enable %s: Any() = %v, want %v", tt.raw, got, tt.any)
		}
	}
	for _, bad := range []string{`"yes"`, `1`, `{"go": "yes"}`, `[true]`} {
		s, err := Merge(Default(), json.RawMessage(`{"enable":`+bad+`}`))
		if err == nil || !reflect.DeepEqual(s.Enable, Default().Enable) {
			t.Errorf("enable %s: %v, %v; want an error and the default kept", bad, s.Enable, err)
		}
	}
	for e, want := range map[string]string{`true`: `true`, `{"*":true,"plaintext":false}`: `{"*":true,"plaintext":false}`, `{"go":false}`: `{"go":false}`} {
		s, _ := Merge(Default(), json.RawMessage(`{"enable":`+e+`}`))
		if b, _ := json.Marshal(s.Enable); string(b) != want {
			t.Errorf("enable %s marshals as %s, want %s", e, b, want)
		}
	}
}

func TestAutomatic(t *testing.T) {
	if !Default().Automatic {
		t.Fatal("automatic is off by default")
	}
	s, err := Merge(Default(), json.RawMessage(`{"automatic":false}`))
	if err != nil || s.Automatic {
		t.Errorf("automatic false: %v, %v", s.Automatic, err)
	}
	if _, err := Merge(Default(), json.RawMessage(`{"automatic":"no"}`)); err == nil {
		t.Error(`automatic "no" accepted`)
	}
}
