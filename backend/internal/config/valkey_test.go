package config

import (
	"reflect"
	"strings"
	"testing"

	"github.com/codingplan/codingplan/backend/internal/valkeyconn"
)

// TestValkeyConn: the Valkey connection settings, from flags and environment, and the
// combinations Validate refuses.
func TestValkeyConn(t *testing.T) {
	for _, tt := range []struct {
		name    string
		args    []string
		vars    map[string]string
		want    valkeyconn.Config
		wantErr string
	}{
		{name: "none", want: valkeyconn.Config{}},
		{name: "everything", args: []string{"--valkey", "v:6380", "--valkey-cluster", "--valkey-username", "cp",
			"--valkey-password-env", "VK_PW", "--valkey-tls", "--valkey-tls-ca", "/ca.pem", "--valkey-tls-server-name", "v.internal",
			"--valkey-tls-cert", "/c.pem", "--valkey-tls-key", "/k.pem"},
			want: valkeyconn.Config{Addrs: []string{"v:6380"}, Cluster: true, Username: "cp", PasswordEnv: "VK_PW", TLS: true,
				TLSCA: "/ca.pem", TLSServerName: "v.internal", TLSCert: "/c.pem", TLSKey: "/k.pem"}},
		{name: "environment", vars: map[string]string{"CODINGPLAN_VALKEY": "v:6380", "CODINGPLAN_VALKEY_TLS": "true",
			"CODINGPLAN_VALKEY_PASSWORD_ENV": "VK_PW"},
			want: valkeyconn.Config{Addrs: []string{"v:6380"}, PasswordEnv: "VK_PW", TLS: true}},
		{name: "ca without tls", args: []string{"--valkey", "v:1", "--valkey-tls-ca", "/ca.pem"}, wantErr: "need valkey_tls = true"},
		{name: "cert without key", args: []string{"--valkey", "v:1", "--valkey-tls", "--valkey-tls-cert", "/c.pem"}, wantErr: "valkey_tls_cert and valkey_tls_key go together"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, tt.args, tt.vars)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.ValkeyConn(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestNoSecretKeys: no key takes a password or an API key itself, only the name of an
// environment variable holding it (a file and flags are read by people and tools that must not
// see it).
func TestNoSecretKeys(t *testing.T) {
	keys := map[string]bool{}
	tomlKeys(reflect.TypeFor[Config](), map[reflect.Type]bool{}, keys)
	for k := range keys {
		for _, word := range []string{"password", "passphrase", "secret", "api_key"} {
			if strings.Contains(k, word) && !strings.HasSuffix(k, "_env") {
				t.Errorf("key %s looks like it holds a secret: take the name of a variable instead (%s_env)", k, k)
			}
		}
	}
}
