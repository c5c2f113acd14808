package remote

import (
	"bufio"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/codingplan/codingplan/lsp/internal/lspx"
	wire "github.com/codingplan/codingplan/shared"
)

// TestInsecureRefused: a ws:// URL to another machine is not dialled unless the transport
// allows it, and the status says why and which setting accepts it.
func TestInsecureRefused(t *testing.T) {
	b := newFakeBackend(t, "tok")
	h := start(t, b, "tok", func(c *Config) { c.URL = "ws://backend.invalid:1" + wire.Path })
	st := h.waitStatus(t, lspx.StateError)
	if st.Reason != lspx.ReasonNoBackendURL || !strings.Contains(st.Message, "allowInsecureBackend") {
		t.Fatalf("status %+v: want reason %s naming allowInsecureBackend", st, lspx.ReasonNoBackendURL)
	}
	// Opted in, it dials (and fails: the host does not exist).
	h.c.SetTransport(Transport{AllowInsecure: true})
	for st = h.waitStatus(t, lspx.StateError); st.Reason == lspx.ReasonNoBackendURL; st = h.waitStatus(t, lspx.StateError) {
	}
	if st.Reason != lspx.ReasonUnreachable {
		t.Errorf("opted in: status %+v, want unreachable", st)
	}
	// Loopback ws:// needs no opt-in.
	h.c.SetTransport(Transport{})
	h.c.SetURL(b.url())
	h.waitStatus(t, lspx.StateReady)
}

// tlsBackend is a fakeBackend served over TLS with httptest's certificate (for 127.0.0.1 and
// example.com), and a PEM file of that certificate to trust.
func tlsBackend(t *testing.T) (*fakeBackend, string) {
	t.Helper()
	b := newFakeBackend(t, "tok")
	b.srv.Close()
	b.srv = httptest.NewUnstartedServer(http.HandlerFunc(b.serve))
	b.srv.StartTLS()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b.srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return b, ca
}

func TestCAFile(t *testing.T) {
	b, ca := tlsBackend(t)
	url := "wss" + strings.TrimPrefix(b.srv.URL, "https") + wire.Path
	empty := filepath.Join(t.TempDir(), "empty.pem")
	if err := os.WriteFile(empty, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, caFile, wantState, wantMsg string
	}{
		{"system roots only", "", lspx.StateError, "certificate"},
		{"missing file", filepath.Join(t.TempDir(), "none.pem"), lspx.StateError, "caFile"},
		{"no certificate in it", empty, lspx.StateError, "no PEM certificate"},
		{"the backend's CA", ca, lspx.StateReady, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t, b, "tok", func(c *Config) { c.URL, c.Transport = url, Transport{CAFile: tt.caFile} })
			st := h.waitStatus(t, tt.wantState)
			if !strings.Contains(st.Message, tt.wantMsg) {
				t.Errorf("status %+v lacks %q", st, tt.wantMsg)
			}
		})
	}
}

// connectProxy is an HTTP CONNECT proxy that sends every tunnel to 127.0.0.1 at the port asked
// for, and records the targets.
type connectProxy struct {
	srv     *httptest.Server
	mu      sync.Mutex
	targets []string
}

func newConnectProxy(t *testing.T) *connectProxy {
	p := &connectProxy{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		p.mu.Lock()
		p.targets = append(p.targets, r.Host)
		p.mu.Unlock()
		_, port, _ := net.SplitHostPort(r.Host)
		up, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", port))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			_ = up.Close()
			return
		}
		_, _ = io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n")
		go func() { _, _ = io.Copy(up, rw); _ = up.Close() }()
		_, _ = io.Copy(conn, up)
		_ = conn.Close()
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *connectProxy) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.targets...)
}

// childEnv marks the child process of TestProxyFromEnvironment.
const childEnv = "CODINGPLAN_TEST_PROXY_CHILD"

// TestProxyFromEnvironment runs a client in a child process (net/http reads the proxy
// variables once per process) with HTTPS_PROXY and NO_PROXY set: wss:// to example.com goes
// through the CONNECT proxy, TLS runs through the tunnel to the backend, verified with the CA
// file (or SSL_CERT_FILE, which Go reads for the system's roots); a host NO_PROXY names is
// dialled directly.
func TestProxyFromEnvironment(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		t.Skip("the child runs TestProxyChild")
	}
	b, ca := tlsBackend(t)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(b.srv.URL, "https://"))
	url := "wss://example.com:" + port + wire.Path
	for _, tt := range []struct {
		name, noProxy, want string
		tunnelled           bool
		certFile            bool // the CA in SSL_CERT_FILE rather than the CA file
	}{
		{"through the proxy", "localhost", "state=" + lspx.StateReady, true, false},
		{"SSL_CERT_FILE", "localhost", "state=" + lspx.StateReady, true, true},
		{"NO_PROXY", ".example.com,example.com", "state=" + lspx.StateError, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := newConnectProxy(t)
			cmd := exec.Command(os.Args[0], "-test.run=^TestProxyChild$", "-test.v")
			cmd.Env = append(os.Environ(), childEnv+"=1", "CHILD_URL="+url, "CHILD_CA="+ca,
				"HTTPS_PROXY="+p.srv.URL, "https_proxy=", "NO_PROXY="+tt.noProxy, "no_proxy=")
			if tt.certFile {
				cmd.Env = append(cmd.Env, "CHILD_CA=", "SSL_CERT_FILE="+ca)
			}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("child said:\n%s\nwant %q", out, tt.want)
			}
			want := []string{"example.com:" + port}
			if got := p.seen(); tt.tunnelled != (len(got) > 0) || tt.tunnelled && got[0] != want[0] {
				t.Errorf("proxy tunnels %v, want %v: %v", got, tt.tunnelled, want)
			}
		})
	}
}

// TestProxyChild is TestProxyFromEnvironment's child: it connects with the default Proxy and
// prints the first ready or error status.
func TestProxyChild(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		t.Skip("run by TestProxyFromEnvironment")
	}
	c := New(Config{URL: os.Getenv("CHILD_URL"), Token: "tok", Transport: Transport{CAFile: os.Getenv("CHILD_CA")},
		DialTimeout: 3 * time.Second}, slog.New(slog.DiscardHandler))
	got := make(chan Status, 16)
	c.Watch(func(s Status) {
		if s.State == lspx.StateReady || s.State == lspx.StateError {
			select {
			case got <- s:
			default:
			}
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	s := recv(t, got, "a ready or error status")
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(w, "state=%s message=%s\n", s.State, s.Message)
	_ = w.Flush()
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Error(err)
	}
}
