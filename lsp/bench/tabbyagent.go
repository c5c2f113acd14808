package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Tabby is tabby-agent running as a language server against an instant fake Tabby server.
type Tabby struct {
	Fake   *TabbyServer
	URL    string
	Server *Server
	Home   string

	http *http.Server
	wg   sync.WaitGroup
}

// TabbyConfig is the agent's ~/.tabby-client/agent/config.toml: the fake server, no usage
// tracking, and no debounce, so the numbers are the agent's own work.
func TabbyConfig(endpoint string) string {
	return strings.Join([]string{
		"[server]",
		fmt.Sprintf("endpoint = %q", endpoint),
		`token = "bench-token"`,
		"",
		"[anonymousUsageTracking]",
		"disable = true",
		"",
		"[completion.debounce]",
		`mode = "fixed"`,
		"interval = 0",
		"",
	}, "\n")
}

// StartTabby starts the fake server and `node <pkg>/dist/cli.js --lsp --stdio` with HOME in
// workDir/tabby-home, initializes it with rootURI, and returns it.
func StartTabby(ctx context.Context, node, pkgDir, workDir, rootURI string) (*Tabby, error) {
	t := &Tabby{Fake: &TabbyServer{Complete: func(string, string) string { return "total, 1)" }}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fake tabby server: %w", err)
	}
	t.URL = "http://" + ln.Addr().String()
	t.http = &http.Server{Handler: t.Fake.Handler()}
	t.wg.Go(func() { _ = t.http.Serve(ln) })

	t.Home = filepath.Join(workDir, "tabby-home")
	cfgDir := filepath.Join(t.Home, ".tabby-client", "agent")
	if err := os.MkdirAll(cfgDir, 0o700); err != nil {
		t.Close()
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "config.toml"), []byte(TabbyConfig(t.URL)), 0o600); err != nil {
		t.Close()
		return nil, err
	}
	srv, err := StartServer(ServerSpec{
		Name: "tabby-agent",
		Path: node,
		Args: []string{filepath.Join(pkgDir, "dist", "cli.js"), "--lsp", "--stdio"},
		Env: []string{
			"HOME=" + t.Home,
			"XDG_CONFIG_HOME=" + filepath.Join(t.Home, ".config"),
			"XDG_CACHE_HOME=" + filepath.Join(t.Home, ".cache"),
			"XDG_DATA_HOME=" + filepath.Join(t.Home, ".local", "share"),
			"NODE_ENV=production",
		},
		StderrPath: filepath.Join(workDir, "tabby-agent.stderr"),
	})
	if err != nil {
		t.Close()
		return nil, err
	}
	t.Server = srv
	if _, err := srv.Initialize(ctx, InitParams(rootURI, false, nil)); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// Close stops the agent and the fake server.
func (t *Tabby) Close() error {
	var errs []error
	if t.Server != nil {
		errs = append(errs, t.Server.Close())
	}
	if t.http != nil {
		errs = append(errs, t.http.Close())
		t.wg.Wait()
	}
	return errors.Join(errs...)
}
