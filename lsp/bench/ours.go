package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Chain is codingplan's full chain: the instant test provider, the backend in front of it, and
// the code to start language servers connected to that backend.
type Chain struct {
	BinDir      string
	WorkDir     string
	ProviderURL string
	BackendURL  string // websocket endpoint
	Token       string

	state       string                    // the backend's state dir (its dev signing key)
	env         func(url string) []string // backend environment for the provider
	backendArgs []string
	backendEnv  []string
	lspEnv      []string

	provider *Proc
	backends []*Proc
	drains   sync.WaitGroup
	upstream atomic.Int64 // model requests the provider received
}

// DefaultProviderArgs make the provider answer at once with one chunk, as the fake Tabby server
// does, with text that fits the benchmark's cursor line.
var DefaultProviderArgs = []string{"--reply", "total, 1)", "--chunk-bytes", "64"}

// BackendPID returns the process id of the first backend.
func (c *Chain) BackendPID() int { return c.backends[0].PID() }

// ProviderPID returns the process id of the provider.
func (c *Chain) ProviderPID() int { return c.provider.PID() }

// Upstream returns how many model requests the provider has received so far.
func (c *Chain) Upstream() int64 { return c.upstream.Load() }

// countUpstream follows the provider's event stream and counts request starts, until the
// provider ends. It returns once the stream is open, so no later request goes uncounted.
func (c *Chain) countUpstream(ctx context.Context) error {
	req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodGet, c.ProviderURL+"/_events", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("provider events: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return fmt.Errorf("provider events: %s", resp.Status)
	}
	c.drains.Go(func() {
		defer resp.Body.Close()
		dec := json.NewDecoder(resp.Body)
		for {
			var ev struct {
				Kind string `json:"kind"`
			}
			if err := dec.Decode(&ev); err != nil {
				return // the provider ended
			}
			if ev.Kind == "start" {
				c.upstream.Add(1)
			}
		}
	})
	return nil
}

// ChainConfig says how to start the chain.
type ChainConfig struct {
	BinDir       string   // holds codingplan-backend, codingplan-lsp, codingplan-fakeprovider
	WorkDir      string   // state dir, logs
	Valkey       string   // Valkey address; empty: the backend's in-process limiter
	ProviderArgs []string // arguments of codingplan-fakeprovider; nil: DefaultProviderArgs
	// ProviderEnv configures the backend's model from the provider's URL.
	ProviderEnv func(url string) []string
	BackendArgs []string // extra serve flags
	BackendEnv  []string // extra environment of the backend (GODEBUG, GOMAXPROCS, ...)
	LSPEnv      []string // extra environment of every codingplan-lsp started
	// StateDir is the backend's state dir (dev key, and the local model it builds on first
	// start, which takes up to a minute); empty: a new one in WorkDir.
	StateDir string
}

// DefaultProviderEnv points the backend's default model (an OpenAI chat one) at the provider.
func DefaultProviderEnv(url string) []string {
	return []string{
		"CODINGPLAN_OPENAI_BASE_URL=" + strings.TrimSuffix(url, "/") + "/v1",
		"CODINGPLAN_OPENAI_MODEL=bench-instant",
		"CODINGPLAN_OPENAI_API_KEY=bench-key",
	}
}

// StartChain starts the provider and the backend, waits for the backend to be ready, and mints
// a token.
func StartChain(ctx context.Context, cfg ChainConfig) (*Chain, error) {
	c := &Chain{BinDir: cfg.BinDir, WorkDir: cfg.WorkDir}
	ok := false
	defer func() {
		if !ok {
			c.Close()
		}
	}()

	out, outW := io.Pipe()
	pargs := cfg.ProviderArgs
	if pargs == nil {
		pargs = DefaultProviderArgs
	}
	p, err := StartProc(filepath.Join(cfg.BinDir, "codingplan-fakeprovider"), pargs, nil, nil, outW,
		filepath.Join(cfg.WorkDir, "fakeprovider.stderr"))
	if err != nil {
		return nil, err
	}
	c.provider = p
	c.drains.Go(func() {
		<-p.Exited()
		outW.Close()
	})
	first, err := FirstLine(ctx, out, &c.drains)
	if err != nil {
		return nil, fmt.Errorf("codingplan-fakeprovider: %w (see %s)", err, filepath.Join(cfg.WorkDir, "fakeprovider.stderr"))
	}
	c.ProviderURL = strings.TrimSpace(first)
	if !strings.HasPrefix(c.ProviderURL, "http") {
		return nil, fmt.Errorf("codingplan-fakeprovider: first line %q is not a URL", first)
	}
	if err := c.countUpstream(ctx); err != nil {
		return nil, err
	}

	c.state = cfg.StateDir
	if c.state == "" {
		c.state = filepath.Join(cfg.WorkDir, "state")
	}
	if err := os.MkdirAll(c.state, 0o700); err != nil {
		return nil, err
	}
	c.env = DefaultProviderEnv
	if cfg.ProviderEnv != nil {
		c.env = cfg.ProviderEnv
	}
	c.backendArgs, c.backendEnv, c.lspEnv = cfg.BackendArgs, cfg.BackendEnv, cfg.LSPEnv
	if c.BackendURL, err = c.StartBackend(ctx, "backend", cfg.Valkey); err != nil {
		return nil, err
	}
	state := c.state

	cmd := exec.CommandContext(ctx, filepath.Join(cfg.BinDir, "codingplan-backend"),
		"token", "--sub", "bench-user", "--plan", "max", "--ttl", "2h", "--state-dir", state)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	tok, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("codingplan-backend token: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	c.Token = strings.TrimSpace(string(tok))
	if c.Token == "" || strings.ContainsAny(c.Token, " \n") {
		return nil, errors.New("codingplan-backend token: stdout is not one token")
	}
	ok = true
	return c, nil
}

// StartBackend starts a backend (another one after the first: they share the dev key) with the
// given Valkey address (empty: the in-process limiter), waits until it is ready, and returns its
// websocket endpoint. name labels its stderr file.
func (c *Chain) StartBackend(ctx context.Context, name, valkey string) (string, error) {
	addr, err := freeAddr()
	if err != nil {
		return "", err
	}
	args := append([]string{"serve", "--listen", addr, "--valkey", valkey, "--state-dir", c.state, "--log-level", "warn"}, c.backendArgs...)
	stderr := filepath.Join(c.WorkDir, name+".stderr")
	// The backend prints a development token and hints on stdout: drop them.
	b, err := StartProc(filepath.Join(c.BinDir, "codingplan-backend"), args, append(c.env(c.ProviderURL), c.backendEnv...), nil, io.Discard, stderr)
	if err != nil {
		return "", err
	}
	c.backends = append(c.backends, b)
	if err := waitReady(ctx, "http://"+addr+"/readyz", b); err != nil {
		return "", fmt.Errorf("codingplan-backend: %w (see %s)", err, stderr)
	}
	return "ws://" + addr + "/v1/ws", nil
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitReady polls url until it answers 200, the process exits, or ctx ends.
func waitReady(ctx context.Context, url string, p *Proc) error {
	client := &http.Client{Timeout: time.Second}
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Errorf("%s: %s", url, resp.Status)
		} else {
			last = err
		}
		select {
		case <-p.Exited():
			return fmt.Errorf("exited before it was ready (last: %v)", last)
		case <-ctx.Done():
			return fmt.Errorf("not ready (last: %v): %w", last, ctx.Err())
		case <-time.After(20 * time.Millisecond): // polling a port that is coming up
		}
	}
}

// Settings are the language server settings the benchmark uses: no debounce (the client sends
// each request when it wants it, as tabby-agent's fixed 0 ms debounce does).
func (c *Chain) Settings() map[string]any {
	return map[string]any{"backendUrl": c.BackendURL, "token": c.Token, "debounceMs": 0}
}

// StartLSP starts codingplan-lsp connected to the chain's backend, initializes it with rootURI
// as an inline or a classic client (see InitParams) and waits for its codingplan/status "ready"
// notification (or ctx). extraArgs go to the binary.
func (c *Chain) StartLSP(ctx context.Context, name, rootURI string, inline bool, extraArgs ...string) (*Server, error) {
	return c.StartLSPBinary(ctx, name, filepath.Join(c.BinDir, "codingplan-lsp"), rootURI, inline, extraArgs...)
}

// StartLSPBinary is StartLSP with the language server binary at path.
func (c *Chain) StartLSPBinary(ctx context.Context, name, path, rootURI string, inline bool, extraArgs ...string) (*Server, error) {
	ready := make(chan struct{})
	var once sync.Once
	settings := c.Settings()
	srv, err := StartServer(ServerSpec{
		Name: name,
		Path: path,
		Args: append([]string{"--stdio", "--log-level", "warn"}, extraArgs...),
		Env: append([]string{
			"CODINGPLAN_TOKEN=" + c.Token,
			"CODINGPLAN_BACKEND_URL=" + c.BackendURL,
		}, c.lspEnv...),
		StderrPath: filepath.Join(c.WorkDir, name+".stderr"),
		Options: ClientOptions{
			OnRequest: func(method string, params json.RawMessage) (any, error) {
				if method != "workspace/configuration" {
					return nil, nil
				}
				var p struct {
					Items []struct {
						Section string `json:"section"`
					} `json:"items"`
				}
				_ = json.Unmarshal(params, &p)
				out := make([]any, len(p.Items))
				for i, it := range p.Items {
					if it.Section == "codingplan" {
						out[i] = settings
					}
				}
				return out, nil
			},
			OnNotify: func(method string, params json.RawMessage) {
				if method != "codingplan/status" {
					return
				}
				var st struct {
					State string `json:"state"`
				}
				if json.Unmarshal(params, &st) == nil && st.State == "ready" {
					once.Do(func() { close(ready) })
				}
			},
		},
	})
	if err != nil {
		return nil, err
	}
	if _, err := srv.Initialize(ctx, InitParams(rootURI, inline, map[string]any{"codingplan": settings})); err != nil {
		srv.Close()
		return nil, err
	}
	wait, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	select {
	case <-ready:
	case <-srv.Client.Done():
		srv.Close()
		return nil, fmt.Errorf("%s exited before it was ready", name)
	case <-wait.Done():
		// Not fatal: a server that never says "ready" still gets measured; WaitUseful decides.
	}
	return srv, nil
}

// target is a measured row for a codingplan-lsp connected to the chain.
func (c *Chain) target(name string, srv *Server, method string, doc *Doc) *Target {
	return &Target{Name: name, Server: srv, Method: method, Doc: doc, Upstream: c.Upstream,
		Watch: []Watched{{"codingplan-lsp", srv.Proc.PID()}, {"codingplan-backend", c.BackendPID()}, {"codingplan-fakeprovider", c.ProviderPID()}}}
}

// Close stops the backend and the provider.
func (c *Chain) Close() {
	for _, b := range c.backends {
		_ = b.Stop(3 * time.Second)
	}
	if c.provider != nil {
		_ = c.provider.Stop(3 * time.Second)
	}
	c.drains.Wait()
}
