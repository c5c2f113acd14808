package config

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestInsecure(t *testing.T) {
	for _, tt := range []struct {
		url  string
		want bool
	}{
		{"ws://127.0.0.1:8787/v1/ws", false},
		{"ws://127.9.9.9/v1/ws", false},
		{"ws://localhost:8787/v1/ws", false},
		{"ws://LOCALHOST./v1/ws", false},
		{"ws://dev.localhost/v1/ws", false},
		{"ws://[::1]:8787/v1/ws", false},
		{"wss://backend.example/v1/ws", false},
		{"wss://10.0.0.1/v1/ws", false},
		{"ws://backend.example/v1/ws", true},
		{"WS://backend.example/v1/ws", true},
		{"ws://10.0.0.1:8787/v1/ws", true},
		{"ws://[::2]/v1/ws", true},
		{"ws://localhost.example/v1/ws", true},
		{"ws://127.0.0.1.example/v1/ws", true},
	} {
		if got := Insecure(tt.url); got != tt.want {
			t.Errorf("Insecure(%q) = %v, want %v", tt.url, got, tt.want)
		}
	}
}

// TestLoadInsecureBackend: a ws:// URL to another machine is reported (the server warns, and
// the connection refuses it) unless allowInsecureBackend says the user accepts it, whichever
// layer or the environment gives the URL.
func TestLoadInsecureBackend(t *testing.T) {
	for _, tt := range []struct {
		name   string
		env    string
		layers []string
		refuse bool
	}{
		{"default", "", nil, false},
		{"loopback", "", []string{`{"backendUrl":"ws://localhost:9/v1/ws"}`}, false},
		{"wss", "", []string{`{"backendUrl":"wss://backend.example/v1/ws"}`}, false},
		{"ws remote", "", []string{`{"backendUrl":"ws://backend.example/v1/ws"}`}, true},
		{"ws remote from env", "ws://backend.example/v1/ws", nil, true},
		{"opted in", "", []string{`{"backendUrl":"ws://backend.example/v1/ws","allowInsecureBackend":true}`}, false},
		{"opted in by an earlier layer", "", []string{`{"allowInsecureBackend":true}`, `{"backendUrl":"ws://10.1.2.3/v1/ws"}`}, false},
		{"opt-in withdrawn", "", []string{`{"backendUrl":"ws://10.1.2.3/v1/ws","allowInsecureBackend":true}`, `{"allowInsecureBackend":false}`}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var layers []json.RawMessage
			for _, l := range tt.layers {
				layers = append(layers, json.RawMessage(l))
			}
			s, err := Load(Env{BackendURL: tt.env}, layers...)
			if got := errors.Is(err, ErrInsecureBackend); got != tt.refuse {
				t.Fatalf("Load error %v: insecure %v, want %v", err, got, tt.refuse)
			}
			if tt.refuse && !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if errors.Is(err, ErrBackendURL) {
				t.Errorf("error %v wraps ErrBackendURL: the URL is kept, the connection refuses it", err)
			}
			if s.BackendURL == "" {
				t.Error("no backend URL")
			}
		})
	}
}
