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
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
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
		outside  = flag.String("outside", "", "comma-separated dirs of Go code outside the corpus to measure suggestions on")
		maxOut   = flag.Int("max-outside-files", 0, "measure on at most this many files of -outside, a fixed sample (0: all)")
		only     = flag.Bool("suggestions-only", false, "skip the next-token and rest-of-line evaluation")
		verbose  = flag.Bool("v", false, "log progress")

		measureLoad = flag.Bool("measure-load", false, "only load the model and print the cost (used by the command itself)")
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

	if *measureLoad {
		return measure(ctx, cfg, log)
	}

	cpu0, start := cpuTime(), time.Now()
	m, err := ngram.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	fmt.Printf("open (train or load):  %v wall, %v CPU\n", time.Since(start).Round(time.Millisecond),
		(cpuTime() - cpu0).Round(time.Millisecond))
	info := m.Info()
	fmt.Printf("file size:             %.1f MiB\n", float64(info.FileBytes)/(1<<20))
	fmt.Printf("vocabulary:            %d tokens\n", info.Vocab)
	fmt.Printf("n-grams per order:     %v\n", info.Nodes)

	// Measure loading in a fresh process, so training's garbage does not count.
	self, err := os.Executable()
	if err != nil {
		return err
	}
	args := append([]string{"-measure-load"}, os.Args[1:]...)
	args = append(args[:len(args):len(args)], "-state", *stateDir)
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("measuring the load: %w", err)
	}

	if !*only {
		if err := evaluate(ctx, cfg, m, *maxFiles, log); err != nil {
			return err
		}
	}
	held, err := ngram.EvaluatePrecision(ctx, cfg, m, ngram.PrecisionOptions{MaxFiles: *maxFiles}, log)
	if err != nil {
		return err
	}
	printPrecision("held-out GOROOT files", held)
	if *outside != "" {
		res, err := ngram.EvaluatePrecision(ctx, cfg, m, ngram.PrecisionOptions{
			Dirs: strings.Split(*outside, ","), MaxFiles: *maxOut}, log)
		if err != nil {
			return err
		}
		printPrecision("Go code outside GOROOT", res)
	}
	return nil
}

// printPrecision prints what a user would see at the end of typed tokens,
// before issue 14 (every token decoded) and now (cut where unsure).
func printPrecision(what string, r ngram.PrecisionResult) {
	fmt.Printf("suggestions on %s (%d files, %d positions):\n", what, r.Files, r.Cut.Positions)
	for _, row := range []struct {
		name string
		s    ngram.Shown
	}{{"greedy (before)", r.Greedy}, {"cut (now)", r.Cut}} {
		fmt.Printf("  %-16s precision %5.1f%%  coverage %5.1f%%  useful chars/position %.2f\n",
			row.name, 100*row.s.Precision(), 100*row.s.Coverage(), row.s.UsefulChars())
	}
	us := func(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }
	fmt.Printf("  time per request (cut): p50 %v, p99 %v, max %v wall; p50 %v, p99 %v, max %v CPU\n",
		us(r.P50), us(r.P99), us(r.Max), us(r.CPUP50), us(r.CPUP99), us(r.CPUMax))
}

// evaluate prints the model's next-token and rest-of-line quality on the
// held-out files beside the baseline.
func evaluate(ctx context.Context, cfg ngram.Config, m *ngram.Model, maxFiles int, log *slog.Logger) error {
	res, err := ngram.Evaluate(ctx, cfg, m, ngram.EvalOptions{MaxFiles: maxFiles}, log)
	if err != nil {
		return err
	}
	pct := func(a, b int) string { return fmt.Sprintf("%.1f%%", 100*float64(a)/float64(max(b, 1))) }
	fmt.Printf("held-out Go files:     %d\n", res.Files)
	fmt.Printf("next token, top-1:     model %s (without cache %s), baseline %s (%d tokens, %s out of vocabulary)\n",
		pct(res.Top1, res.Tokens), pct(res.Top1NoCache, res.Tokens), pct(res.BaselineTop1, res.Tokens),
		res.Tokens, pct(res.OOV, res.Tokens))
	fmt.Printf("rest of line, exact:   model %s (without cache %s), baseline %s (%d lines)\n",
		pct(res.LineExact, res.Lines), pct(res.LineExactNoCache, res.Lines), pct(res.BaselineExact, res.Lines), res.Lines)
	fmt.Printf("model's line answers:  %s exact, %s a correct start that stops early, %s empty, %s wrong\n",
		pct(res.LineExact, res.Lines), pct(res.LinePrefix, res.Lines), pct(res.LineEmpty, res.Lines),
		pct(res.Lines-res.LineExact-res.LinePrefix-res.LineEmpty, res.Lines))
	fmt.Printf("time per prediction:   %v per token, %v per line (model and baseline)\n",
		(res.TokenDuration / time.Duration(max(res.Tokens, 1))).Round(100*time.Nanosecond),
		(res.LineDuration / time.Duration(max(res.Lines, 1))).Round(time.Microsecond))
	return nil
}

// measure loads the model and prints what that cost: wall and CPU time,
// and the process's memory afterwards.
func measure(ctx context.Context, cfg ngram.Config, log *slog.Logger) error {
	cpu0, start := cpuTime(), time.Now()
	m, err := ngram.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	wall, cpu := time.Since(start), cpuTime()-cpu0
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("load (fresh process):  %v wall, %v CPU (listing the corpus for the fingerprint included)\n",
		wall.Round(time.Millisecond), cpu.Round(time.Millisecond))
	fmt.Printf("memory after load:     RSS %d MiB, Go heap %d MiB\n", rss()>>20, ms.HeapAlloc>>20)
	runtime.KeepAlive(m)
	return nil
}

// cpuTime is the CPU time this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
