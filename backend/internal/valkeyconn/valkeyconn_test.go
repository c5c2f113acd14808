package valkeyconn

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/valkey-io/valkey-go"

	"github.com/codingplan/codingplan/backend/internal/valkeytest"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// TestOptions: what each setting turns into, and the errors for bad settings, which name the
// setting and never hold the password.
func TestOptions(t *testing.T) {
	ca := valkeytest.NewCA(t)
	cert, key := ca.Issue("client")
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const password = "canary-Pa55word"
	getenv := env(map[string]string{"VALKEY_PW": password})
	addrs := []string{"valkey.example.com:6379"}
	for _, tt := range []struct {
		name    string
		c       Config
		wantErr string // a substring; empty: no error
		check   func(t *testing.T, opt valkey.ClientOption)
	}{
		{name: "plain", c: Config{Addrs: addrs}, check: func(t *testing.T, opt valkey.ClientOption) {
			if opt.TLSConfig != nil || opt.Password != "" || opt.Username != "" || !opt.ForceSingleClient || !opt.DisableCache {
				t.Errorf("got %+v", opt)
			}
		}},
		{name: "cluster", c: Config{Addrs: []string{"a:1", "b:2"}, Cluster: true, TLS: true}, check: func(t *testing.T, opt valkey.ClientOption) {
			if opt.ForceSingleClient || len(opt.InitAddress) != 2 || opt.TLSConfig == nil || opt.TLSConfig.ServerName != "" {
				t.Errorf("got %+v", opt)
			}
		}},
		{name: "acl user and password", c: Config{Addrs: addrs, Username: "cp", PasswordEnv: "VALKEY_PW"}, check: func(t *testing.T, opt valkey.ClientOption) {
			if opt.Username != "cp" || opt.Password != password {
				t.Errorf("user %q, password read: %v", opt.Username, opt.Password == password)
			}
		}},
		{name: "password env unset", c: Config{Addrs: addrs, PasswordEnv: "NOT_SET"}, wantErr: "valkey_password_env: the variable NOT_SET is unset or empty"},
		{name: "tls system roots", c: Config{Addrs: addrs, TLS: true}, check: func(t *testing.T, opt valkey.ClientOption) {
			tc := opt.TLSConfig
			if tc == nil || tc.RootCAs != nil || tc.MinVersion != tls.VersionTLS12 || tc.InsecureSkipVerify {
				t.Errorf("got %+v", tc)
			}
		}},
		{name: "tls full", c: Config{Addrs: addrs, TLS: true, TLSCA: ca.File, TLSServerName: "valkey.internal", TLSCert: cert, TLSKey: key}, check: func(t *testing.T, opt valkey.ClientOption) {
			tc := opt.TLSConfig
			if tc.RootCAs == nil || tc.ServerName != "valkey.internal" || len(tc.Certificates) != 1 {
				t.Errorf("got %+v", tc)
			}
		}},
		{name: "ca missing", c: Config{Addrs: addrs, TLS: true, TLSCA: "/nonexistent/ca.pem"}, wantErr: "valkey_tls_ca: open /nonexistent/ca.pem"},
		{name: "ca garbage", c: Config{Addrs: addrs, TLS: true, TLSCA: garbage}, wantErr: "valkey_tls_ca: " + garbage + " holds no PEM certificate"},
		{name: "cert without key", c: Config{Addrs: addrs, TLS: true, TLSCert: cert}, wantErr: "must be given together"},
		{name: "key is no key", c: Config{Addrs: addrs, TLS: true, TLSCert: cert, TLSKey: garbage}, wantErr: "valkey_tls_cert and valkey_tls_key: "},
		{name: "tls settings without tls", c: Config{Addrs: addrs, TLSCA: ca.File}, wantErr: "valkey_tls is off"},
		{name: "no address", c: Config{}, wantErr: "no address"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opt, err := Options(tt.c, getenv)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				tt.check(t, opt)
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got error %v, want one with %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("the error holds the password: %v", err)
			}
		})
	}
}

// TestCause: the cause named for each kind of failure.
func TestCause(t *testing.T) {
	for _, tt := range []struct {
		err  error
		tls  bool
		want string
	}{
		{nil, false, ""},
		{&tls.CertificateVerificationError{Err: errors.New("x509: certificate signed by unknown authority")}, true, "tls"},
		{tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, true, "tls"},
		{&valkey.ValkeyError{}, false, "network"},
		{fmt.Errorf("dial: %w", io.EOF), true, "network: the server closed the connection; if it wants a client certificate, set valkey_tls_cert and valkey_tls_key"},
		{fmt.Errorf("dial: %w", io.EOF), false, "network: the server closed the connection; if it wants TLS, set valkey_tls"},
		{errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), false, "network"},
		{&net.OpError{Op: "remote error", Err: errors.New("tls: certificate required")}, true,
			"tls: the server wants a client certificate; set valkey_tls_cert and valkey_tls_key"},
	} {
		if got := Cause(Config{TLS: tt.tls}, tt.err); got != tt.want {
			t.Errorf("Cause(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
