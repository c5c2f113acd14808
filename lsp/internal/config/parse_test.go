package config

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	wire "github.com/codingplan/codingplan/shared"
)

func TestMerge(t *testing.T) {
	base := Default()
	tests := []struct {
		name    string
		raw     string
		edit    func(s *Settings)
		wantErr []string // substrings of the error; nil = no error
	}{
		{name: "null", raw: `null`, edit: func(*Settings) {}},
		{name: "empty", raw: `{}`, edit: func(*Settings) {}},
		{name: "section", raw: `{"codingplan":{"model":"fast","maxTokens":64}}`,
			edit: func(s *Settings) { s.Model, s.MaxTokens = "fast", 64 }},
		{name: "flat", raw: `{"enable":false,"multiline":"never","trace":"messages"}`,
			edit: func(s *Settings) { s.Enable, s.Multiline, s.Trace = Enable{AllLanguages: false}, "never", "messages" }},
		{name: "ignore replaces", raw: `{"ignore":["*.secret"]}`,
			edit: func(s *Settings) { s.Ignore = []string{"*.secret"} }},
		{name: "null field keeps", raw: `{"model":null}`, edit: func(*Settings) {}},
		{name: "unknown keys ignored", raw: `{"future":1,"debounceMs":0}`, edit: func(s *Settings) { s.DebounceMS = 0 }},
		{name: "token", raw: `{"token":" abc "}`, edit: func(s *Settings) { s.Token = "abc" }},
		{name: "backend url", raw: `{"backendUrl":"wss://x.example/v1/ws"}`,
			edit: func(s *Settings) { s.BackendURL = "wss://x.example/v1/ws" }},
		{name: "bad values keep base, good ones apply",
			raw:  `{"maxTokens":0,"multiline":"sometimes","model":"m","debounceMs":1.5,"enable":"yes","backendUrl":"http://x"}`,
			edit: func(s *Settings) { s.Model = "m" },
			wantErr: []string{"maxTokens: must be a whole number from 1 to 8192; using 256",
				`multiline: must be one of auto, always, never; using "auto"`, "debounceMs", "enable: must be true, false or an object",
				"backendUrl: must be a ws:// or wss:// URL"}},
		{name: "bad glob", raw: `{"ignore":["[x"]}`, edit: func(*Settings) {}, wantErr: []string{`pattern "[x" is malformed`}},
		{name: "not an object", raw: `[1]`, edit: func(*Settings) {}, wantErr: []string{"must be a JSON object"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := Default()
			tt.edit(&want)
			got, err := Merge(base, json.RawMessage(tt.raw))
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Merge = %+v\nwant    %+v", got, want)
			}
			if tt.wantErr == nil {
				if err != nil {
					t.Errorf("error = %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error = %v, want ErrInvalid", err)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if base.Ignore[0] != Default().Ignore[0] {
		t.Error("Merge changed base's ignore list")
	}
}

func TestLoad(t *testing.T) {
	env := FromEnv(func(k string) string {
		return map[string]string{EnvToken: "envtok\n", EnvBackendURL: "wss://env:1/v1/ws"}[k]
	})
	tests := []struct {
		name      string
		layers    []string
		wantToken wire.Secret
		wantURL   string
		wantModel string
	}{
		{"env only", nil, "envtok", "wss://env:1/v1/ws", ""},
		{"settings win", []string{`{"token":"t","backendUrl":"wss://s/v1/ws"}`}, "t", "wss://s/v1/ws", ""},
		{"empty settings fall back to env", []string{`{"token":"","backendUrl":""}`}, "envtok", "wss://env:1/v1/ws", ""},
		{"later layer wins", []string{`{"model":"a"}`, `{"codingplan":{"model":"b"}}`}, "envtok", "wss://env:1/v1/ws", "b"},
		{"later layer keeps earlier fields", []string{`{"model":"a"}`, `{"maxTokens":9}`}, "envtok", "wss://env:1/v1/ws", "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var layers []json.RawMessage
			for _, l := range tt.layers {
				layers = append(layers, json.RawMessage(l))
			}
			got, err := Load(env, layers...)
			if err != nil {
				t.Fatal(err)
			}
			if got.Token != tt.wantToken || got.BackendURL != tt.wantURL || got.Model != tt.wantModel {
				t.Errorf("Load = token %q url %q model %q, want %q %q %q", string(got.Token), got.BackendURL, got.Model,
					string(tt.wantToken), tt.wantURL, tt.wantModel)
			}
		})
	}
	if got, _ := Load(Env{}); got.BackendURL != Default().BackendURL || got.Token != "" {
		t.Errorf("Load without env = %q %q, want the default URL and no token", got.BackendURL, string(got.Token))
	}
}

// TestKeys checks that every field of Settings can be set, by its JSON name.
func TestKeys(t *testing.T) {
	var names []string
	st := reflect.TypeFor[Settings]()
	for i := range st.NumField() {
		names = append(names, strings.Split(st.Field(i).Tag.Get("json"), ",")[0])
	}
	slices.Sort(names)
	if got := Keys(); !reflect.DeepEqual(got, names) {
		t.Errorf("Keys() = %v, want the Settings JSON names %v", got, names)
	}
}

func TestMergeBackendURLError(t *testing.T) {
	tests := []struct {
		raw          string
		invalid, url bool
	}{
		{`{"backendUrl":"wss://a.example/v1/ws"}`, false, false},
		{`{"backendUrl":"http://a.example/v1/ws"}`, true, true},
		{`{"backendUrl":42}`, true, true},
		{`{"maxTokens":-1}`, true, false},
	}
	for _, tt := range tests {
		base := Default()
		got, err := Merge(base, json.RawMessage(tt.raw))
		if errors.Is(err, ErrInvalid) != tt.invalid || errors.Is(err, ErrBackendURL) != tt.url {
			t.Errorf("Merge(%s) error %v: ErrInvalid %v, ErrBackendURL %v; want %v, %v", tt.raw, err,
				errors.Is(err, ErrInvalid), errors.Is(err, ErrBackendURL), tt.invalid, tt.url)
		}
		if tt.url && got.BackendURL != base.BackendURL {
			t.Errorf("Merge(%s) changed the URL to %q", tt.raw, got.BackendURL)
		}
	}
}
