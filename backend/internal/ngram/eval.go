package ngram

import (
	"bytes"
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"time"
)

// EvalResult is the quality of a model on held-out files, beside a trivial
// baseline: the token that most often follows the previous token.
type EvalResult struct {
	Files  int // held-out files read
	Tokens int // next-token predictions made
	OOV    int // of those, tokens outside the vocabulary (never counted correct)

	Top1, BaselineTop1 int // next-token predictions that were right

	Lines                      int // rest-of-line completions tried
	LineExact, BaselineExact   int // completions equal to the rest of the line
	LineEmpty                  int // completions the model declined (empty)
	TokenDuration, LineDuration time.Duration
}

// EvalOptions bounds an evaluation.
type EvalOptions struct {
	MaxFiles int // 0: all held-out files
}

// Evaluate measures m on the held-out files of cfg's corpus, which training
// never saw: top-1 next-token accuracy (a token counts with its whitespace
// class) and exact match of the rest of the line (one cut per line, at a
// token boundary chosen by a hash, completing to the end of the line with
// the following lines as suffix; runs of spaces and tabs compare as one
// space). Only Go files are evaluated.
func Evaluate(ctx context.Context, cfg Config, m *Model, opts EvalOptions, log *slog.Logger) (EvalResult, error) {
	cfg = cfg.withDefaults()
	var res EvalResult
	dirs, err := corpusDirs(ctx, cfg, log)
	if err != nil {
		return res, err
	}
	files, err := listCorpus(ctx, dirs)
	if err != nil {
		return res, fmt.Errorf("ngram: %w", err)
	}
	sc := m.scratch.Get().(*scorer)
	defer m.scratch.Put(sc)
	var toks []token
	var key []byte
	for _, f := range files {
		if f.lang != "go" || !heldOut(f.rel, cfg.HoldOutPercent) {
			continue
		}
		if opts.MaxFiles > 0 && res.Files >= opts.MaxFiles {
			break
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		src, err := readFileLimited(f.path)
		if err != nil || isGenerated(src) {
			continue
		}
		res.Files++
		toks = layout(tokenize(toks[:0], src, f.lang), src)
		ids := make([]uint32, len(toks))
		for i := range toks {
			ids[i], key = m.lookup(familyGo, &toks[i], key)
		}

		start := time.Now()
		hist := make([]uint32, 0, m.order)
		for i := range ids {
			hist = append(hist[:0], boundary)
			lo := max(0, i-(m.order-1))
			if lo > 0 {
				hist = hist[:0]
			}
			hist = append(hist, ids[lo:i]...)
			want := ids[i]
			res.Tokens++
			known := want != unknownID && isWord(m.key(want))
			if !known {
				res.OOV++
				continue
			}
			m.prepare(sc, hist)
			if got, ok := m.best(sc, familyGo, nil); ok && got == want {
				res.Top1++
			}
			if i > 0 && ids[i-1] != unknownID && m.baseline[ids[i-1]] == want {
				res.BaselineTop1++
			}
		}
		res.TokenDuration += time.Since(start)

		start = time.Now()
		if err := m.evalLines(ctx, f, src, toks, &res); err != nil {
			return res, err
		}
		res.LineDuration += time.Since(start)
	}
	return res, nil
}

// evalLines cuts each line of src once and compares the completions of the
// model and of the baseline with the rest of the line.
func (m *Model) evalLines(ctx context.Context, f corpusFile, src []byte, toks []token, res *EvalResult) error {
	baseline := func(g *generation, first bool) (uint32, bool) {
		if first && g.partial != "" {
			// The baseline cannot complete words: it takes the word as typed.
			id, ok := m.find(string([]byte{g.family, g.partialCode}) + g.partial)
			return id, ok
		}
		hist := g.hist
		if len(hist) == 0 || hist[len(hist)-1] == unknownID {
			return 0, false
		}
		return m.baseline[hist[len(hist)-1]], true
	}
	var got []byte
	collect := func(b []byte) error { got = append(got, b...); return nil }
	for i := 0; i < len(toks); {
		// The line is toks[i:j].
		j := i + 1
		for j < len(toks) && toks[j].space != spaceLine && toks[j].space != spaceBlank {
			j++
		}
		lineStart, lineEnd := i, j
		i = j
		if lineEnd-lineStart < 2 {
			continue
		}
		last := toks[lineEnd-1]
		if bytes.IndexByte(src[toks[lineStart].start:last.end], '\n') >= 0 {
			continue // a token spans lines
		}
		h := fnv.New32a()
		fmt.Fprintf(h, "%s:%d", f.rel, lineStart)
		cut := lineStart + 1 + int(h.Sum32()%uint32(lineEnd-lineStart-1))
		prefix := src[:toks[cut-1].end]
		want := normalizeSpace(src[toks[cut-1].end:last.end])
		suffix := src[last.end:]
		res.Lines++
		got = got[:0]
		if _, err := m.Complete(ctx, prefix, suffix, f.lang, 64, false, collect); err != nil {
			return err
		}
		if len(got) == 0 {
			res.LineEmpty++
		}
		if normalizeSpace(got) == want {
			res.LineExact++
		}
		got = got[:0]
		if _, err := m.complete(ctx, prefix, suffix, f.lang, 64, false, collect, baseline); err != nil {
			return err
		}
		if normalizeSpace(got) == want {
			res.BaselineExact++
		}
	}
	return nil
}

// normalizeSpace collapses runs of spaces and tabs to one space.
func normalizeSpace(b []byte) string {
	var sb strings.Builder
	inSpace := false
	for _, c := range b {
		if c == ' ' || c == '\t' {
			inSpace = true
			continue
		}
		if inSpace {
			sb.WriteByte(' ')
			inSpace = false
		}
		sb.WriteByte(c)
	}
	if inSpace {
		sb.WriteByte(' ')
	}
	return sb.String()
}
