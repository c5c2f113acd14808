package config

import (
	"os"
	"path/filepath"
	"testing"

	wire "github.com/codingplan/codingplan/shared"
)

func TestServiceURL(t *testing.T) {
	tests := []struct {
		name, backend, accounts, want string
	}{
		{"make run's", "ws://127.0.0.1:8787/v1/ws", "", "http://127.0.0.1:8788"},
		{"localhost", "ws://localhost:8787/v1/ws", "", "http://localhost:8788"},
		{"ipv6 loopback", "ws://[::1]:8787/v1/ws", "", "http://[::1]:8788"},
		{"deployed", "wss://codingplan.example.com/v1/ws", "", "https://codingplan.example.com"},
		{"deployed with a port", "wss://cp.example.com:8443/v1/ws", "", "https://cp.example.com:8443"},
		{"port 8787 elsewhere", "ws://10.0.0.5:8787/v1/ws", "", "http://10.0.0.5:8787"},
		{"set", "wss://codingplan.example.com/v1/ws", "https://accounts.example.com", "https://accounts.example.com"},
	}
	for _, tt := range tests {
		s := Settings{BackendURL: tt.backend, AccountsURL: tt.accounts}
		if got := s.ServiceURL(); got != tt.want {
			t.Errorf("%s: ServiceURL() = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestAccountsURLSetting(t *testing.T) {
	env := Env{AccountsURL: "http://env.example:1"}
	s, err := Load(env, []byte(`{"codingplan":{"accountsUrl":"https://accounts.example.com/"}}`))
	if err != nil || s.AccountsURL != "https://accounts.example.com" {
		t.Errorf("accountsUrl set: %q, %v; want https://accounts.example.com", s.AccountsURL, err)
	}
	s, err = Load(env, []byte(`{"accountsUrl":"ftp://x"}`))
	if err == nil || s.AccountsURL != env.AccountsURL {
		t.Errorf("bad accountsUrl: %q, %v; want the environment's and an error", s.AccountsURL, err)
	}
	if s, _ := Load(env); s.AccountsURL != env.AccountsURL {
		t.Errorf("unset: %q, want the environment's", s.AccountsURL)
	}
}

func TestAPIKey(t *testing.T) {
	file := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(file, []byte("cpk_fromfile \nsecond line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := Env{APIKey: "cpk_fromenv"}
	tests := []struct {
		name    string
		file    string
		want    wire.Secret
		wantErr bool
	}{
		{"environment", "", "cpk_fromenv", false},
		{"file", file, "cpk_fromfile", false},
		{"missing file", file + ".none", "", true},
	}
	for _, tt := range tests {
		got, err := Settings{APIKeyFile: tt.file}.APIKey(env)
		if string(got) != string(tt.want) || (err != nil) != tt.wantErr {
			t.Errorf("%s: %q, %v; want %q, error %v", tt.name, string(got), err, string(tt.want), tt.wantErr)
		}
	}
}
