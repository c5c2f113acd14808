package valkeyconn_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/codingplan/codingplan/backend/internal/lease"
	"github.com/codingplan/codingplan/backend/internal/usage"
	"github.com/codingplan/codingplan/backend/internal/valkeyconn"
	"github.com/codingplan/codingplan/backend/internal/valkeytest"
	wire "github.com/codingplan/codingplan/shared"
)

// password is the ACL user's password: a canary that no error may hold.
const password = "canary-vk-7f3a9c2e51"

func getenv(k string) string {
	if k == "TEST_VALKEY_PASSWORD" {
		return password
	}
	return ""
}

// dial connects with the options valkeyconn builds for c.
func dial(t *testing.T, c valkeyconn.Config) (valkey.Client, error) {
	t.Helper()
	opt, err := valkeyconn.Options(c, getenv)
	if err != nil {
		t.Fatal(err)
	}
	opt.Dialer.Timeout = 5 * time.Second
	client, err := valkey.NewClient(opt)
	if err != nil {
		if client != nil {
			client.Close()
		}
		if strings.Contains(err.Error(), password) {
			t.Errorf("the error holds the password: %v", err)
		}
		return nil, err
	}
	t.Cleanup(client.Close)
	return client, nil
}

// TestLeaseAndUsage runs the lease pool and the usage meter on a Valkey that wants an ACL user
// (the one docs/operations.md describes) and password, with and without TLS, connected through the options valkeyconn builds.
func TestLeaseAndUsage(t *testing.T) {
	acl := valkeytest.BackendACL(t, password, "~test-*")
	for _, tt := range []struct {
		name string
		opt  valkeytest.Options
	}{
		{"acl", valkeytest.Options{ACL: acl}},
		{"tls and acl", valkeytest.Options{TLS: true, ACL: acl}},
		{"tls client certificate", valkeytest.Options{TLS: true, ClientCerts: true, ACL: acl}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := valkeytest.StartWith(t, tt.opt)
			c := valkeyconn.Config{Addrs: []string{srv.Addr()}, Username: "codingplan", PasswordEnv: "TEST_VALKEY_PASSWORD", TLS: tt.opt.TLS}
			if tt.opt.TLS {
				c.TLSCA = srv.CA.File
			}
			if tt.opt.ClientCerts {
				c.TLSCert, c.TLSKey = srv.CA.Issue("backend")
			}
			client, err := dial(t, c)
			if err != nil {
				t.Fatal(err)
			}
			leaseAndUsage(t, client)
		})
	}
}

// TestCluster is TestLeaseAndUsage on a three-node cluster over TLS, found from one seed.
func TestCluster(t *testing.T) {
	nodes := valkeytest.StartCluster(t, valkeytest.Options{TLS: true, ACL: valkeytest.BackendACL(t, password, "~test-*")})
	client, err := dial(t, valkeyconn.Config{Addrs: []string{nodes[1].Addr()}, Cluster: true,
		Username: "codingplan", PasswordEnv: "TEST_VALKEY_PASSWORD", TLS: true, TLSCA: nodes[0].CA.File})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(client.Nodes()); n != 3 {
		t.Errorf("the client knows %d nodes, want 3", n)
	}
	leaseAndUsage(t, client)
}

// leaseAndUsage takes and gives back a lease, and records and reads usage, through client.
func leaseAndUsage(t *testing.T, client valkey.Client) {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	prefix := fmt.Sprintf("test-conn-%d", time.Now().UnixNano())
	pool := lease.New(client, lease.Config{Prefix: prefix, MaxWait: -1, RecoveryWindow: -1}, log)
	defer pool.Close(ctx)
	for _, user := range []string{"u1", "u2", "u3", "u4"} { // several users: several slots
		l, err := pool.Acquire(ctx, user, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Acquire(ctx, user, 1, nil); !errors.Is(err, lease.ErrLimit) {
			t.Errorf("second acquire at limit 1: %v, want ErrLimit", err)
		}
		if n, err := client.Do(ctx, client.B().Zcard().Key(prefix+":{"+user+"}:leases").Build()).AsInt64(); err != nil || n != 1 {
			t.Errorf("leases in Valkey: %d, %v; want 1", n, err)
		}
		l.ReleaseNow()
		if n, err := pool.InUse(ctx, user); err != nil || n != 0 {
			t.Errorf("in use after release: %d, %v", n, err)
		}
		meter := usage.New(client, prefix, log)
		if err := meter.Record(ctx, user, wire.Usage{PromptTokens: 5, CompletionTokens: 2}); err != nil {
			t.Fatal(err)
		}
		got, err := meter.Day(ctx, user, time.Now())
		if want := (usage.Counts{Requests: 1, PromptTokens: 5, CompletionTokens: 2}); err != nil || got != want {
			t.Errorf("usage: %+v, %v; want %+v", got, err, want)
		}
	}
	if err := pool.Ready(); err != nil {
		t.Errorf("pool not ready: %v", err)
	}
}

// TestRefused: each wrong setting fails the connection with a cause that says what is wrong,
// and no error holds the password.
func TestRefused(t *testing.T) {
	acl := valkeytest.BackendACL(t, password, "~test-*")
	tlsSrv := valkeytest.StartWith(t, valkeytest.Options{TLS: true, ACL: acl})
	certSrv := valkeytest.StartWith(t, valkeytest.Options{TLS: true, ClientCerts: true, ACL: acl})
	plainSrv := valkeytest.StartWith(t, valkeytest.Options{ACL: acl})
	good := func(s *valkeytest.Server) valkeyconn.Config {
		c := valkeyconn.Config{Addrs: []string{s.Addr()}, Username: "codingplan", PasswordEnv: "TEST_VALKEY_PASSWORD"}
		if s.CA != nil {
			c.TLS, c.TLSCA = true, s.CA.File
		}
		return c
	}
	for _, tt := range []struct {
		name      string
		c         func() valkeyconn.Config
		wantCause string
		wantErr   string
	}{
		{"wrong password", func() valkeyconn.Config {
			c := good(tlsSrv)
			c.PasswordEnv = "HOME" // set, but not the password
			return c
		}, "auth", "WRONGPASS"},
		{"no password", func() valkeyconn.Config {
			c := good(plainSrv)
			c.Username, c.PasswordEnv = "", ""
			return c
		}, "auth", "NOAUTH"},
		{"wrong ca", func() valkeyconn.Config {
			c := good(tlsSrv)
			c.TLSCA = valkeytest.NewCA(t).File
			return c
		}, "tls", "certificate signed by unknown authority"},
		{"wrong server name", func() valkeyconn.Config {
			c := good(tlsSrv)
			c.TLSServerName = "valkey.elsewhere.example"
			return c
		}, "tls", "valkey.elsewhere.example"},
		{"plain tcp to the tls port", func() valkeyconn.Config {
			c := good(tlsSrv)
			c.TLS, c.TLSCA = false, ""
			return c
		}, "network: the server closed the connection; if it wants TLS, set valkey_tls", ""},
		{"tls to a plain port", func() valkeyconn.Config {
			c := good(plainSrv)
			c.TLS = true
			return c
		}, "network", ""}, // the server waits for the end of a command that never comes
		{"no client certificate", func() valkeyconn.Config { return good(certSrv) },
			"network: the server closed the connection; if it wants a client certificate, set valkey_tls_cert and valkey_tls_key", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.c()
			opt, err := valkeyconn.Options(c, func(k string) string {
				if k == "HOME" { // a wrong password that holds the canary: sent, it must not come back
					return password + "-old"
				}
				return getenv(k)
			})
			if err != nil {
				t.Fatal(err)
			}
			opt.Dialer.Timeout = 2 * time.Second
			client, err := valkey.NewClient(opt)
			if client != nil {
				client.Close()
			}
			if err == nil {
				t.Fatal("connected")
			}
			// Under TLS 1.3 the refusal of a missing client certificate comes as the server's
			// alert or as the closed connection, whichever the client reads first.
			alsoRight := map[string]string{"no client certificate": "tls: the server wants a client certificate; set valkey_tls_cert and valkey_tls_key"}
			if got := valkeyconn.Cause(c, err); got != tt.wantCause && got != alsoRight[tt.name] {
				t.Errorf("cause %q, want %q (err %v)", got, tt.wantCause, err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q, want one with %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("the error holds the password: %v", err)
			}
		})
	}
}
