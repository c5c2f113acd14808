package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Config is one benchmark run.
type Config struct {
	WorkDir string // scratch space: homes, state, logs

	Node     string // node binary
	TabbyPkg string // the tabby-agent package directory; empty skips the peer

	BinDir       string   // codingplan binaries; empty skips codingplan
	Valkey       string   // Valkey address for the backend; empty: in-process limiter
	StateDir     string   // the backend's state dir, kept between runs; empty: a new one
	ProviderArgs []string // arguments of codingplan-fakeprovider; nil: DefaultProviderArgs
	LSPArgs      []string // extra arguments of the measured codingplan-lsp (a profile flag, say)
	LSPEnv       []string // extra environment of codingplan-lsp (GOMAXPROCS=1, GOMEMLIMIT=..., GODEBUG=...)
	// CompareLSP are other codingplan-lsp binaries (a build from before a change, say), each
	// measured as one more inline target against the same backend, in the same rounds.
	CompareLSP []string
	// BareExe serves the bare stdio language server probe when run with BareArgs (lspbench
	// itself, with -serve-bare); empty skips that probe.
	BareExe    string
	BareArgs   []string
	BackendEnv []string // extra environment of the backend

	Rounds   int           // rounds; each runs every target PerRound times, in a rotating order
	PerRound int           // iterations per target per round (one miss and one hit each)
	Warmup   int           // iterations per target before measuring
	Timeout  time.Duration // bound of one request

	MemDocs  int // documents opened for the memory measurement
	MemBytes int // their total size

	Progress io.Writer // progress lines; nil for none
}

// Report is what a run measured, and what it could not.
type Report struct {
	Config   Config
	Targets  []*Target
	Probes   []*Probe // the chain's components on their own
	Rounds   map[*Target][]RoundP50
	Memory   []MemoryResult
	Problems []string
	Elapsed  time.Duration
}

// RoundP50 is the median miss and hit latency of one target in one round.
type RoundP50 struct{ Miss, Hit time.Duration }

func (c *Config) logf(format string, args ...any) {
	if c.Progress != nil {
		fmt.Fprintf(c.Progress, format+"\n", args...)
	}
}

// Run starts the servers, measures latency side by side, then memory, and stops everything.
// Problems with one side are recorded in the report and the other side is still measured.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	start := time.Now()
	rep := &Report{Config: cfg, Rounds: map[*Target][]RoundP50{}}
	root := filepath.Join(cfg.WorkDir, "workspace")
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, err
	}
	rootURI := "file://" + root
	problem := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		rep.Problems = append(rep.Problems, msg)
		cfg.logf("problem: %s", msg)
	}
	setupCtx := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 30*time.Second) }

	var closers []func()
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}()

	if cfg.TabbyPkg != "" {
		cfg.logf("starting tabby-agent")
		sctx, cancel := setupCtx()
		t, err := startTabbyTarget(sctx, cfg, filepath.Join(cfg.WorkDir, "tabby"), rootURI)
		cancel()
		if t != nil {
			closers = append(closers, func() { _ = t.Close() })
		}
		if err != nil {
			problem("tabby-agent: %v", err)
		} else {
			rep.Targets = append(rep.Targets, &Target{
				Name: "tabby-agent 1.5.0", Server: t.Server, Method: MethodCompletion,
				Doc: NewDoc(rootURI + "/tabby.go"), Upstream: t.Fake.Completions,
				Watch: []Watched{{"node (tabby-agent)", t.Server.Proc.PID()}},
			})
		}
	}

	var chain *Chain
	if cfg.BinDir != "" {
		cfg.logf("starting codingplan: provider, backend, language server")
		// A backend's first start in a new state dir builds its local model: allow for it.
		sctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		var err error
		chain, err = StartChain(sctx, ChainConfig{BinDir: cfg.BinDir, WorkDir: cfg.WorkDir, Valkey: cfg.Valkey,
			ProviderArgs: cfg.ProviderArgs, StateDir: cfg.StateDir, LSPEnv: cfg.LSPEnv, BackendEnv: cfg.BackendEnv})
		if err != nil {
			problem("codingplan chain: %v", err)
			chain = nil
		} else {
			closers = append(closers, chain.Close)
			// One server per kind of client: a server answers classic completion only to
			// clients that cannot show inline completions.
			for _, k := range []struct {
				name, method, file string
				inline             bool
			}{
				{"codingplan-lsp-inline", MethodInlineCompletion, "/ours_inline.go", true},
				{"codingplan-lsp-classic", MethodCompletion, "/ours_completion.go", false},
			} {
				srv, err := chain.StartLSP(sctx, k.name, rootURI, k.inline, cfg.LSPArgs...)
				if err != nil {
					problem("%s: %v", k.name, err)
					continue
				}
				closers = append(closers, func() { _ = srv.Close() })
				rep.Targets = append(rep.Targets, chain.target("codingplan", srv, k.method, NewDoc(rootURI+k.file)))
			}
			for i, bin := range cfg.CompareLSP {
				name := fmt.Sprintf("codingplan-lsp-compare%d", i+1)
				srv, err := chain.StartLSPBinary(sctx, name, bin, rootURI, true, cfg.LSPArgs...)
				if err != nil {
					problem("%s (%s): %v", name, bin, err)
					continue
				}
				closers = append(closers, func() { _ = srv.Close() })
				label := "codingplan (" + filepath.Base(filepath.Dir(bin)) + "/" + filepath.Base(bin) + ")"
				rep.Targets = append(rep.Targets, chain.target(label, srv, MethodInlineCompletion, NewDoc(fmt.Sprintf("%s/compare%d.go", rootURI, i+1))))
			}
		}
		cancel()
	}

	// Open the documents and wait until each target answers with a suggestion.
	var ready []*Target
	for _, t := range rep.Targets {
		if err := t.Doc.Open(t.Server.Client); err != nil {
			problem("%s %s: didOpen: %v", t.Name, t.Method, err)
			continue
		}
		sctx, cancel := setupCtx()
		err := t.WaitUseful(sctx, cfg.Timeout)
		cancel()
		if err != nil {
			problem("%s %s: %v", t.Name, t.Method, err)
			continue
		}
		ready = append(ready, t)
	}
	rep.Targets = ready
	if chain != nil {
		sctx, cancel := setupCtx()
		rep.Probes = startProbes(sctx, cfg, chain, rootURI, problem)
		cancel()
		for _, p := range rep.Probes {
			closers = append(closers, p.Close)
		}
	}

	cfg.logf("warm-up: %d iterations per target", cfg.Warmup)
	for _, t := range rep.Targets {
		if err := t.Measure(ctx, cfg.Warmup, cfg.Timeout, false); err != nil {
			return rep, err
		}
	}
	for _, p := range rep.Probes {
		if err := p.Measure(ctx, cfg.Warmup, cfg.Timeout, false); err != nil {
			return rep, err
		}
	}
	for r := range cfg.Rounds {
		cfg.logf("round %d/%d", r+1, cfg.Rounds)
		n := len(rep.Targets)
		for i := range n {
			t := rep.Targets[(i+r)%n]
			m, h := len(t.Samples.Miss), len(t.Samples.Hit)
			if err := t.Measure(ctx, cfg.PerRound, cfg.Timeout, true); err != nil {
				return rep, err
			}
			rep.Rounds[t] = append(rep.Rounds[t], RoundP50{Miss: Median(t.Samples.Miss[m:]), Hit: Median(t.Samples.Hit[h:])})
		}
		for _, p := range rep.Probes {
			if err := p.Measure(ctx, cfg.PerRound, cfg.Timeout, true); err != nil {
				return rep, err
			}
		}
	}

	if cfg.MemDocs > 0 {
		if chain != nil {
			cfg.logf("memory: codingplan-lsp with %d documents", cfg.MemDocs)
			m, err := measureOursMemory(ctx, cfg, chain, rootURI)
			if err != nil {
				problem("codingplan-lsp memory: %v", err)
			} else {
				rep.Memory = append(rep.Memory, m)
			}
		}
		if cfg.TabbyPkg != "" {
			cfg.logf("memory: tabby-agent with %d documents", cfg.MemDocs)
			m, err := measureTabbyMemory(ctx, cfg, rootURI)
			if err != nil {
				problem("tabby-agent memory: %v", err)
			} else {
				rep.Memory = append(rep.Memory, m)
			}
		}
	}
	rep.Elapsed = time.Since(start)
	return rep, nil
}

// startProbes sets up the component probes: the provider alone, the backend with the provider
// (with the run's limiter), and, when the run uses Valkey, a second backend with the in-process
// limiter to show what Valkey costs.
func startProbes(ctx context.Context, cfg Config, chain *Chain, rootURI string, problem func(string, ...any)) []*Probe {
	probes := []*Probe{NewProviderProbe(chain.ProviderURL, "bench-instant")}
	limiter := "in-process limiter"
	if cfg.Valkey != "" {
		limiter = "Valkey limiter"
	}
	backends := []struct{ name, url string }{{"backend + provider (websocket, " + limiter + ")", chain.BackendURL}}
	if cfg.Valkey != "" {
		url, err := chain.StartBackend(ctx, "backend-inprocess", "")
		if err != nil {
			problem("second backend (in-process limiter): %v", err)
		} else {
			backends = append(backends, struct{ name, url string }{"backend + provider (websocket, in-process limiter)", url})
		}
	}
	for i, b := range backends {
		p, err := NewBackendProbe(ctx, b.name, b.url, chain.Token)
		if err != nil {
			problem("%s: %v", b.name, err)
			continue
		}
		if i == 0 {
			p.Role = RoleBackend
		}
		probes = append(probes, p)
	}
	if cfg.BareExe != "" {
		// As codingplan-lsp runs by default (GOMAXPROCS=1), unless the run's environment says.
		env := append([]string{"GOMAXPROCS=1"}, cfg.LSPEnv...)
		name := "bare Go stdio language server (answers at once)"
		p, err := NewBareProbe(ctx, name, cfg.BareExe, cfg.BareArgs, env, filepath.Join(cfg.WorkDir, "bare.stderr"), rootURI)
		if err != nil {
			problem("%s: %v", name, err)
		} else {
			p.Role = RoleStdio
			probes = append(probes, p)
		}
	}
	return probes
}

func startTabbyTarget(ctx context.Context, cfg Config, dir, rootURI string) (*Tabby, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return StartTabby(ctx, cfg.Node, cfg.TabbyPkg, dir, rootURI)
}

func measureOursMemory(ctx context.Context, cfg Config, chain *Chain, rootURI string) (MemoryResult, error) {
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	srv, err := chain.StartLSP(sctx, "codingplan-lsp-memory", rootURI, true)
	if err != nil {
		return MemoryResult{}, err
	}
	m, err := MeasureMemory(sctx, srv, MethodInlineCompletion, MemoryDocs(rootURI, cfg.MemDocs, cfg.MemBytes))
	m.Name = "codingplan-lsp"
	return m, errors.Join(err, srv.Close())
}

func measureTabbyMemory(ctx context.Context, cfg Config, rootURI string) (MemoryResult, error) {
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	t, err := startTabbyTarget(sctx, cfg, filepath.Join(cfg.WorkDir, "tabby-memory"), rootURI)
	if t != nil {
		defer t.Close()
	}
	if err != nil {
		return MemoryResult{}, err
	}
	// Let the agent connect first, as in the latency run, so the memory is a working agent's.
	warm := &Target{Name: "tabby-agent", Server: t.Server, Method: MethodCompletion, Doc: NewDoc(rootURI + "/tabby-memory.go")}
	if err := warm.Doc.Open(t.Server.Client); err != nil {
		return MemoryResult{}, err
	}
	if err := warm.WaitUseful(sctx, cfg.Timeout); err != nil {
		return MemoryResult{}, err
	}
	m, err := MeasureMemory(sctx, t.Server, MethodCompletion, MemoryDocs(rootURI, cfg.MemDocs, cfg.MemBytes))
	m.Name = "tabby-agent 1.5.0 (node)"
	return m, err
}
