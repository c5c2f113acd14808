// Package valkeytest runs private valkey-server processes for tests that need to kill, hang or
// restart the server they talk to, or that need TLS, ACL users or a cluster of their own. The
// servers keep nothing on disk, like the ones make test starts: a restart loses every key.
package valkeytest

import (
	"bytes"
	"crypto/tls"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Options of a server started with StartWith.
type Options struct {
	// TLS makes the server speak TLS only, with a certificate for 127.0.0.1 and localhost
	// signed by a CA made for the test (Server.CA).
	TLS bool
	// ClientCerts makes a TLS server require a client certificate signed by its CA
	// (tls-auth-clients yes); otherwise it asks for none.
	ClientCerts bool
	// CA signs a TLS server's certificate; nil: a CA of its own (Server.CA).
	CA *CA
	// ACL lines of the server's configuration, e.g. "user cp on >secret ~* &* +@all" and
	// "user default off". The package adds a user of its own, for StartCluster.
	ACL []string
	// Cluster starts the server with cluster mode on (see StartCluster).
	Cluster bool
}

// Credentials of the user the package adds to servers with ACL lines.
const (
	adminUser     = "valkeytest"
	adminPassword = "valkeytest-admin"
)

// Server is one valkey-server owned by a test, on a fixed port so it can come back after a
// kill. Its methods are safe for concurrent use.
type Server struct {
	t    testing.TB
	port int
	dir  string
	opt  Options
	args []string // of valkey-server
	// CA signed the server's certificate; nil without TLS.
	CA   *CA
	ping []tls.Certificate // pong's client certificate, for ClientCerts

	mu   sync.Mutex
	cmd  *exec.Cmd
	exit chan error
}

// Start runs a server on a free loopback port until the test ends. Without valkey-server
// installed it skips the test, or fails it when CODINGPLAN_REQUIRE_VALKEY=1.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartOn(t, FreePort(t))
}

// StartOn is Start on a given port.
func StartOn(t testing.TB, port int) *Server {
	t.Helper()
	return start(t, port, Options{})
}

// StartWith is Start with options: TLS, ACL users.
func StartWith(t testing.TB, opt Options) *Server {
	t.Helper()
	return start(t, FreePort(t), opt)
}

func start(t testing.TB, port int, opt Options) *Server {
	t.Helper()
	if _, err := exec.LookPath("valkey-server"); err != nil {
		if os.Getenv("CODINGPLAN_REQUIRE_VALKEY") == "1" {
			t.Fatal("valkey-server is not installed (scripts/valkey.sh install)")
		}
		t.Skip("valkey-server is not installed (scripts/valkey.sh install)")
	}
	s := &Server{t: t, port: port, dir: t.TempDir(), opt: opt}
	s.args = s.serverArgs()
	s.Restart()
	t.Cleanup(func() {
		s.Signal(syscall.SIGCONT)
		s.Stop(syscall.SIGKILL)
	})
	return s
}

// FreePort returns a loopback port nothing listens on at the moment.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Restart starts the server (again, after Stop), empty, and waits until it answers PING.
func (s *Server) Restart() {
	s.t.Helper()
	cmd := exec.Command("valkey-server", s.args...)
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start valkey-server: %v", err)
	}
	exit := make(chan error, 1)
	go func() { exit <- cmd.Wait() }() // owned by Stop, through exit
	s.mu.Lock()
	s.cmd, s.exit = cmd, exit
	s.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !s.pong() {
		if time.Now().After(deadline) {
			s.t.Fatalf("valkey-server on %s did not answer PING within 10s", s.Addr())
		}
		<-tick.C
	}
}

// serverArgs are valkey-server's arguments: a configuration file with the ACL lines, if any,
// then the options.
func (s *Server) serverArgs() []string {
	s.t.Helper()
	var args []string
	if len(s.opt.ACL) > 0 {
		conf := filepath.Join(s.dir, "valkey.conf")
		lines := append(s.opt.ACL[:len(s.opt.ACL):len(s.opt.ACL)], "user "+adminUser+" on >"+adminPassword+" ~* &* +@all")
		if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			s.t.Fatal(err)
		}
		args = append(args, conf)
	}
	port := strconv.Itoa(s.port)
	if s.opt.TLS {
		if s.CA = s.opt.CA; s.CA == nil {
			s.CA = NewCA(s.t)
		}
		cert, key := s.CA.Issue("valkey-" + port)
		auth := "no"
		if s.opt.ClientCerts {
			auth = "yes"
			pc, err := tls.LoadX509KeyPair(s.CA.Issue("ping"))
			if err != nil {
				s.t.Fatal(err)
			}
			s.ping = []tls.Certificate{pc}
		}
		args = append(args, "--port", "0", "--tls-port", port, "--tls-cert-file", cert, "--tls-key-file", key,
			"--tls-ca-cert-file", s.CA.File, "--tls-auth-clients", auth)
		if s.opt.Cluster {
			args = append(args, "--tls-cluster", "yes")
		}
	} else {
		args = append(args, "--port", port)
	}
	if s.opt.Cluster {
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(s.dir, "nodes.conf"))
	}
	return append(args, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", s.dir,
		"--logfile", filepath.Join(s.dir, "valkey.log"))
}

// pong reports whether the server answers PING (or asks for authentication first).
func (s *Server) pong() bool {
	var c net.Conn
	var err error
	if s.opt.TLS {
		tc := &tls.Config{RootCAs: s.CA.Pool(), MinVersion: tls.VersionTLS12, Certificates: s.ping}
		c, err = tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", s.Addr(), tc)
	} else {
		c, err = net.DialTimeout("tcp", s.Addr(), time.Second)
	}
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	b := make([]byte, 7)
	n, _ := c.Read(b)
	return bytes.HasPrefix(b[:n], []byte("+PONG")) || bytes.HasPrefix(b[:n], []byte("-NOAUTH"))
}

// Log is what the server wrote to its log file so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "valkey.log"))
	return string(b)
}

// Stop ends the server with sig (SIGTERM: a clean shutdown that saves nothing; SIGKILL: a
// crash) and waits for it to exit.
func (s *Server) Stop(sig syscall.Signal) {
	s.mu.Lock()
	cmd, exit := s.cmd, s.exit
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	<-exit
}

// Signal sends sig to the running server: SIGSTOP makes it hang, SIGCONT resumes it.
func (s *Server) Signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(sig)
	}
}
