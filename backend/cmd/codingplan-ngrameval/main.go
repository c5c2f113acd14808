// Command codingplan-ngrameval trains (or loads) the local n-gram model and
// measures it: training time, file size, load time, memory, and quality on
// held-out files beside a trivial baseline. It prints figures only, never
// code.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"time"

	"github.com/codingplan/codingplan/backend/internal/ngram"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "codingplan-ngrameval:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		stateDir = flag.String("state", "", "state dir holding the model file (default: a new temporary dir)")
		corpus   = flag.String("corpus", "", "comma-separated extra corpus dirs")
		noGoroot = flag.Bool("no-goroot", false, "leave GOROOT/src out of the corpus")
		order    = flag.Int("order", 0, "n-gram order (0: default)")
		minCount = flag.Int("min-count", 0, "prune n-grams seen fewer times (0: default)")
		maxFiles = flag.Int("max-files", 0, "evaluate at most this many held-out files (0: all)")
		verbose  = flag.Bool("v", false, "log progress")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	if *stateDir == "" {
		dir, err := os.MkdirTemp("", "ngrameval-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		*stateDir = dir
	}
	cfg := ngram.Config{StateDir: *stateDir, NoGoroot: *noGoroot, Order: *order, MinCount: *minCount}
	if *corpus != "" {
		cfg.CorpusDirs = strings.Split(*corpus, ",")
	}

	start := time.Now()
	if _, err := ngram.Open(ctx, cfg, log); err != nil {
		return err
	}
	fmt.Printf("open (train or load):  %v\n", time.Since(start).Round(time.Millisecond))
	runtime.GC()

	// Load again, now from the file, and measure what that costs.
	before := rss()
	start = time.Now()
	m, err := ngram.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	loadTime := time.Since(start)
	runtime.GC()
	info := m.Info()
	fmt.Printf("load:                  %v\n", loadTime.Round(time.Millisecond))
	fmt.Printf("file size:             %.1f MiB\n", float64(info.FileBytes)/(1<<20))
	fmt.Printf("vocabulary:            %d tokens\n", info.Vocab)
	fmt.Printf("n-grams per order:     %v\n", info.Nodes)
	fmt.Printf("RSS after load:        %d MiB (process, %d MiB before this load)\n", rss()>>20, before>>20)

	res, err := ngram.Evaluate(ctx, cfg, m, ngram.EvalOptions{MaxFiles: *maxFiles}, log)
	if err != nil {
		return err
	}
	pct := func(a, b int) string { return fmt.Sprintf("%.1f%%", 100*float64(a)/float64(max(b, 1))) }
	fmt.Printf("held-out Go files:     %d\n", res.Files)
	fmt.Printf("next token, top-1:     model %s, baseline %s (%d tokens, %s out of vocabulary)\n",
		pct(res.Top1, res.Tokens), pct(res.BaselineTop1, res.Tokens), res.Tokens, pct(res.OOV, res.Tokens))
	fmt.Printf("rest of line, exact:   model %s, baseline %s (%d lines; model declined %s)\n",
		pct(res.LineExact, res.Lines), pct(res.BaselineExact, res.Lines), res.Lines, pct(res.LineEmpty, res.Lines))
	fmt.Printf("time per prediction:   %v per token, %v per line (model and baseline)\n",
		(res.TokenDuration / time.Duration(max(res.Tokens, 1))).Round(100*time.Nanosecond),
		(res.LineDuration / time.Duration(max(res.Lines, 1))).Round(time.Microsecond))
	return nil
}

// rss returns the resident set size of this process, from /proc on Linux,
// or 0.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			var kb int64
			fmt.Sscan(string(rest), &kb)
			return kb << 10
		}
	}
	return 0
}
