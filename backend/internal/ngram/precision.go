package ngram

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Shown counts the suggestions of one way of completing at the evaluation's
// cursor positions.
type Shown struct {
	Positions  int // cursor positions asked
	Shown      int // positions that got a suggestion
	Right      int // suggestions exactly what the file has next, up to where they stop
	RightChars int // characters of the right suggestions (runs of spaces count as one)
}

// Precision is the share of suggestions that are right.
func (s Shown) Precision() float64 { return ratio(s.Right, s.Shown) }

// Coverage is the share of positions that got a suggestion.
func (s Shown) Coverage() float64 { return ratio(s.Shown, s.Positions) }

// UsefulChars is the characters of right suggestions per position.
func (s Shown) UsefulChars() float64 { return ratio(s.RightChars, s.Positions) }

func ratio(a, b int) float64 { return float64(a) / float64(max(b, 1)) }

// PrecisionResult compares the completions shown at the end of typed
// tokens: Greedy is every token decoded (the model before issue 14), Cut
// what Complete shows now.
type PrecisionResult struct {
	Files         int
	Greedy, Cut   Shown
	P50, P99, Max time.Duration // wall time of one Complete call, as Cut
	// The same in CPU time of the thread that ran it (Linux only; 0
	// elsewhere): what a request costs on a machine busy with other work.
	CPUP50, CPUP99, CPUMax time.Duration
}

// PrecisionOptions chooses the files of a precision evaluation.
type PrecisionOptions struct {
	// Dirs are directories of Go code to measure on, whole; none for the
	// held-out files of the corpus.
	Dirs []string
	// MaxFiles, when positive, takes at most this many files, a fixed
	// pseudo-random sample.
	MaxFiles int
	// MaxPositions, when positive, stops after this many cursor positions.
	MaxPositions int

	conf *confidence // instead of defaultConfidence, for tuning
}

// EvaluatePrecision measures what a user would see: in every line of the
// files, the cursor is put once after a token (chosen by a hash, never the
// line's first), as if that token had just been typed; the prefix is the
// file up to there, the suffix the file after that line. A suggestion is
// right when it is exactly what the file has next, up to where it stops
// (and stops between tokens of the file). It prints nothing of the code.
func EvaluatePrecision(ctx context.Context, cfg Config, m *Model, opts PrecisionOptions, log *slog.Logger) (PrecisionResult, error) {
	cfg = cfg.withDefaults()
	var res PrecisionResult
	dirs, goOnly := opts.Dirs, ""
	if len(dirs) == 0 {
		var err error
		if dirs, goOnly, err = corpusDirs(ctx, cfg, log); err != nil {
			return res, err
		}
	}
	files, err := listCorpus(ctx, dirs)
	if err != nil {
		return res, fmt.Errorf("ngram: %w", err)
	}
	files = goFilesOnly(files, goOnly)
	var chosen []corpusFile
	for _, f := range files {
		if f.lang == "go" && (len(opts.Dirs) > 0 || heldOut(f.rel, cfg.HoldOutPercent)) {
			chosen = append(chosen, f)
		}
	}
	if opts.MaxFiles > 0 && len(chosen) > opts.MaxFiles {
		slices.SortStableFunc(chosen, func(a, b corpusFile) int { return cmpU64(sampleKey(a.rel), sampleKey(b.rel)) })
		chosen = chosen[:opts.MaxFiles]
	}
	runtime.LockOSThread() // for threadCPU
	defer runtime.UnlockOSThread()
	var took, cpu []time.Duration
	for _, f := range chosen {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if opts.MaxPositions > 0 && res.Cut.Positions >= opts.MaxPositions {
			break
		}
		src, err := readFileLimited(f.path)
		if err != nil || isGenerated(src) {
			continue
		}
		res.Files++
		if took, cpu, err = m.precisionFile(ctx, f, src, opts, &res, took, cpu); err != nil {
			return res, err
		}
	}
	res.P50, res.P99, res.Max = percentiles(took)
	res.CPUP50, res.CPUP99, res.CPUMax = percentiles(cpu)
	return res, nil
}

// precisionFile asks at one cursor position per line of src.
func (m *Model) precisionFile(ctx context.Context, f corpusFile, src []byte, opts PrecisionOptions,
	res *PrecisionResult, took, cpu []time.Duration) ([]time.Duration, []time.Duration, error) {
	toks := layout(tokenize(nil, src, f.lang), src)
	var got []byte
	collect := func(b []byte) error { got = append(got, b...); return nil }
	run := func(in Input, opts completeOptions) (string, error) {
		got = got[:0]
		_, err := m.complete(ctx, in, collect, opts)
		return normalizeSpace(got), err
	}
	err := eachCut(f, src, toks, func(cut, end int) error {
		if opts.MaxPositions > 0 && res.Cut.Positions >= opts.MaxPositions {
			return errEnough
		}
		in := Input{Prefix: src[:cut], Suffix: src[end:], Language: f.lang, MaxTokens: 64}
		want := normalizeSpace(src[cut:end])
		out, err := run(in, completeOptions{greedy: true, minProb: m.minProb})
		if err != nil {
			return err
		}
		res.Greedy.count(out, want)
		start, cpu0 := time.Now(), threadCPU()
		out, err = run(in, completeOptions{minProb: m.minProb, conf: opts.conf})
		took, cpu = append(took, time.Since(start)), append(cpu, threadCPU()-cpu0)
		if err != nil {
			return err
		}
		res.Cut.count(out, want)
		return nil
	})
	if errors.Is(err, errEnough) {
		err = nil
	}
	return took, cpu, err
}

// percentiles returns the median, 99th percentile and maximum of d.
func percentiles(d []time.Duration) (p50, p99, top time.Duration) {
	if len(d) == 0 {
		return 0, 0, 0
	}
	slices.Sort(d)
	return d[len(d)/2], d[len(d)*99/100], d[len(d)-1]
}

// errEnough stops eachCut at PrecisionOptions.MaxPositions.
var errEnough = errors.New("enough positions")

// count adds one position whose suggestion is out and where the file has
// want next.
func (s *Shown) count(out, want string) {
	s.Positions++
	if out == "" {
		return
	}
	s.Shown++
	if !strings.HasPrefix(want, out) {
		return
	}
	// The suggestion must stop between two of the file's tokens, not in
	// the middle of a word of it.
	if n := len(out); n < len(want) && isIdentByte(out[n-1]) && isIdentByte(want[n]) {
		return
	}
	s.Right++
	s.RightChars += len(out)
}
