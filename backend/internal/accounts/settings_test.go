package accounts

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultSettingsValid(t *testing.T) {
	if err := DefaultSettings().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "accounts.toml")
	os.WriteFile(file, []byte(`
listen = "127.0.0.1:9000"
public_url = "https://accounts.example.com"
valkey_tls = true
[plans.solo]
concurrency = 2
[billing]
stripe_secrets_env = ["STRIPE_WHSEC"]
[billing.plans]
price_1Solo = "solo"
[rate]
session_burst = 7
`), 0o600)
	env := map[string]string{
		EnvConfigFile:                          file,
		"CODINGPLAN_ACCOUNTS_LISTEN":           "127.0.0.1:9001",
		"CODINGPLAN_ACCOUNTS_RATE_TOKEN_BURST": "3",
		"CODINGPLAN_ACCOUNTS_SESSION_TTL":      "1h",
		"STRIPE_WHSEC":                         "whsec_abc",
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	l := Register(fs)
	if err := fs.Parse([]string{"--listen", "127.0.0.1:9002", "--billing-tolerance", "1m", "--valkey", "v:6379", "--valkey-cluster", "true"}); err != nil {
		t.Fatal(err)
	}
	s, err := l.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if s.Listen != "127.0.0.1:9002" || s.SessionTTL != time.Hour || s.Rate.TokenBurst != 3 || s.Rate.SessionBurst != 7 ||
		s.Billing.Tolerance != time.Minute || len(s.Plans) != 1 || s.Plans["solo"].Concurrency != 2 || s.URL() != "https://accounts.example.com" {
		t.Errorf("settings: %+v", s)
	}
	if vc := s.ValkeyConn(); !vc.TLS || !vc.Cluster || len(vc.Addrs) != 1 || vc.Addrs[0] != "v:6379" {
		t.Errorf("valkey: %+v", vc)
	}
	b, err := s.BillingConfig(func(k string) string { return env[k] })
	if err != nil || len(b.StripeSecrets) != 1 || b.StripeSecrets[0] != "whsec_abc" || b.Plans["price_1Solo"] != "solo" {
		t.Errorf("billing config: %+v %v", b, err)
	}
	if _, err := s.BillingConfig(func(string) string { return "" }); err == nil {
		t.Error("an empty secret variable was accepted")
	}
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(*Settings)
	}{
		{"bad log level", func(s *Settings) { s.LogLevel = "loud" }},
		{"bad database", func(s *Settings) { s.Database = "mysql://x" }},
		{"bad public url", func(s *Settings) { s.PublicURL = "ftp://x" }},
		{"no plans", func(s *Settings) { s.Plans = nil }},
		{"zero concurrency", func(s *Settings) { s.Plans = map[string]Plan{"x": {}} }},
		{"billing plan not in plans", func(s *Settings) { s.Billing.Plans = map[string]string{"price_1": "gold"} }},
		{"inline secret", func(s *Settings) { s.Billing.StripeSecretsEnv = []string{"whsec_abc"} }},
		{"negative rate", func(s *Settings) { s.Rate.TokenBurst = -1 }},
		{"short session", func(s *Settings) { s.SessionTTL = time.Second }},
		{"no issuer", func(s *Settings) { s.Issuer = "" }},
		{"short access ttl", func(s *Settings) { s.AccessTTL = time.Second }},
		{"revocation ttl under access ttl", func(s *Settings) { s.AccessTTL = time.Hour }},
		{"cluster without seed", func(s *Settings) { s.ValkeyCluster = "true" }},
		{"client cert without key", func(s *Settings) { s.Valkey = "x:1"; s.ValkeyTLSCert = "c.pem" }},
	} {
		s := DefaultSettings()
		tt.edit(s)
		if err := s.Validate(); err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
}

// TestDocs: docs/accounts.md names every key the environment and flags can set.
func TestDocs(t *testing.T) {
	b, err := os.ReadFile("../../../docs/accounts.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, k := range Keys() {
		if !strings.Contains(doc, "`"+k+"`") {
			t.Errorf("docs/accounts.md does not name `%s`", k)
		}
	}
}

func TestPassword(t *testing.T) {
	h := HashPassword("hunter2")
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q", h)
	}
	for pw, want := range map[string]bool{"hunter2": true, "hunter3": false, "": false} {
		if ok, err := CheckPassword(h, pw); ok != want || err != nil {
			t.Errorf("%q: %v %v", pw, ok, err)
		}
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA", "$argon2id$v=19$m=99999999,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA"} {
		if _, err := CheckPassword(bad, "x"); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
