// Command lspbench measures codingplan-lsp (through the real backend and an instant provider)
// beside tabby-agent (against an instant fake Tabby server) in one run, and codingplan-lsp's
// memory with many open documents. It prints a markdown report; scripts/bench-lsp.sh runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/codingplan/codingplan/lsp/bench"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "lspbench:", err)
		os.Exit(1)
	}
}

func run() error {
	var cfg bench.Config
	var providerArgs, lspArgs, lspEnv, backendEnv, compare, docsFile, command string
	var serveBare, bare bool
	var deadline time.Duration
	flag.StringVar(&cfg.Node, "node", "node", "node binary for tabby-agent")
	flag.StringVar(&cfg.TabbyPkg, "tabby", "", "tabby-agent package directory (holds dist/cli.js); empty skips it")
	flag.StringVar(&cfg.BinDir, "bin", "bin", "directory of the codingplan binaries; empty skips codingplan")
	flag.StringVar(&cfg.Valkey, "valkey", "", "Valkey address for the backend; empty uses its in-process limiter")
	flag.StringVar(&cfg.StateDir, "state", "", "backend state dir kept between runs (its first start builds a local model); empty: a new one")
	flag.StringVar(&providerArgs, "provider-args", "", "space-separated arguments of codingplan-fakeprovider (default: "+strings.Join(bench.DefaultProviderArgs, " ")+")")
	flag.StringVar(&lspArgs, "lsp-args", "", "space-separated extra arguments of the measured codingplan-lsp")
	flag.StringVar(&lspEnv, "lsp-env", "", "space-separated NAME=VALUE added to codingplan-lsp's environment (e.g. GOMAXPROCS=1)")
	flag.StringVar(&backendEnv, "backend-env", "", "space-separated NAME=VALUE added to the backend's environment")
	flag.StringVar(&compare, "compare-lsp", "", "space-separated paths of other codingplan-lsp binaries (a build from before a change), each measured as one more inline target in the same rounds")
	flag.BoolVar(&bare, "bare", true, "also time a bare Go stdio language server that answers at once (this binary with -serve-bare), to derive codingplan-lsp's own share of a miss")
	flag.BoolVar(&serveBare, "serve-bare", false, "serve the bare language server on stdin and stdout (what -bare starts)")
	flag.IntVar(&cfg.Rounds, "rounds", 10, "rounds; each runs every target -per-round times")
	flag.IntVar(&cfg.PerRound, "per-round", 50, "iterations per target per round (a miss and a hit each)")
	flag.IntVar(&cfg.Warmup, "warmup", 30, "warm-up iterations per target")
	flag.DurationVar(&cfg.Timeout, "timeout", 5*time.Second, "bound of one request")
	flag.DurationVar(&deadline, "deadline", 10*time.Minute, "bound of the whole run")
	flag.IntVar(&cfg.MemDocs, "mem-docs", 100, "documents opened for the memory measurement; 0 skips it")
	flag.IntVar(&cfg.MemBytes, "mem-bytes", 10<<20, "total size of those documents")
	flag.StringVar(&cfg.WorkDir, "work", "", "scratch directory (default: a new temporary one, removed after)")
	flag.StringVar(&docsFile, "docs", "", "also write the report between the bench-lsp markers of this markdown file")
	flag.StringVar(&command, "command", "", "the command line to print in the report (default: this one)")
	flag.Parse()
	if serveBare {
		return bench.ServeBare(os.Stdin, os.Stdout)
	}
	if cfg.Rounds < 1 || cfg.PerRound < 1 || cfg.Warmup < 0 || cfg.MemDocs < 0 {
		return errors.New("-rounds and -per-round must be at least 1, -warmup and -mem-docs at least 0")
	}
	if providerArgs != "" {
		cfg.ProviderArgs = strings.Fields(providerArgs)
	}
	cfg.LSPArgs = strings.Fields(lspArgs)
	cfg.LSPEnv = strings.Fields(lspEnv)
	cfg.BackendEnv = strings.Fields(backendEnv)
	cfg.CompareLSP = strings.Fields(compare)
	if bare {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		cfg.BareExe, cfg.BareArgs = exe, []string{"-serve-bare"}
	}
	if command == "" {
		command = strings.Join(os.Args, " ")
	}
	if cfg.WorkDir == "" {
		dir, err := os.MkdirTemp("", "lspbench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		cfg.WorkDir = dir
	}
	cfg.Progress = os.Stderr

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()

	machine := bench.Machine(cfg.Node)
	when := time.Now()
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	md := rep.Markdown(machine, command, when)
	fmt.Print(md)
	if docsFile != "" {
		doc, err := os.ReadFile(docsFile)
		if err != nil {
			return err
		}
		out, err := bench.ReplaceSection(doc, md)
		if err != nil {
			return fmt.Errorf("%s: %w", docsFile, err)
		}
		if err := os.WriteFile(docsFile, out, 0o644); err != nil {
			return err
		}
	}
	return nil
}
