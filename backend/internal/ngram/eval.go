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
	OOV    int // of those, tokens outside the model's vocabulary

	// Next-token predictions that were right: the model with the file's own
	// tokens so far as its cache, without the cache, and the baseline.
	Top1, Top1NoCache, BaselineTop1 int

	Lines int // rest-of-line completions tried
	// Completions equal to the rest of the line, as Complete makes them
	// (with the cache), without the cache, and by the baseline.
	LineExact, LineExactNoCache, BaselineExact int
	// Completions that are a correct start of the rest of the line but
	// stop early, and completions that were empty; the rest are wrong.
	LinePrefix, LineEmpty int

	TokenDuration, LineDuration time.Duration
}

// EvalOptions bounds an evaluation.
type EvalOptions struct {
	MaxFiles int // 0: all held-out files
}

// Evaluate measures m on the held-out Go files of cfg's corpus, which
// training never saw. Next token: given the file up to a token, is the
// most probable next token the right one (text and whitespace class; a
// token outside the vocabulary counts as right only when the cache names
// it). Rest of line: each line is cut once, after a token chosen by a
// hash, and Complete's single-line completion (the following lines as the
// suffix) is compared with the rest of the line; runs of spaces and tabs
// compare as one space.
func Evaluate(ctx context.Context, cfg Config, m *Model, opts EvalOptions, log *slog.Logger) (EvalResult, error) {
	cfg = cfg.withDefaults()
	var res EvalResult
	dirs, _, err := corpusDirs(ctx, cfg, log)
	if err != nil {
		return res, err
	}
	files, err := listCorpus(ctx, dirs)
	if err != nil {
		return res, fmt.Errorf("ngram: %w", err)
	}
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
		toks := layout(tokenize(nil, src, f.lang), src)
		start := time.Now()
		m.evalTokens(toks, &res)
		res.TokenDuration += time.Since(start)
		start = time.Now()
		if err := m.evalLines(ctx, f, src, toks, &res); err != nil {
			return res, err
		}
		res.LineDuration += time.Since(start)
	}
	return res, nil
}

// evalTokens predicts every token of a file from the ones before it.
func (m *Model) evalTokens(toks []token, res *EvalResult) {
	sc := m.scratch.Get().(*scorer)
	defer m.scratch.Put(sc)
	c := newCache(m, len(toks))
	ids := make([]uint32, len(toks))  // model ids
	cids := make([]uint32, len(toks)) // cache ids
	var key []byte
	for i := range toks {
		ids[i], key = m.lookup(familyGo, &toks[i], key)
		cids[i] = c.id(ids[i], appendKey(key[:0], familyGo, &toks[i]), toks[i].kind)
	}
	var hist []uint32
	for i := range ids {
		hist = append(hist[:0], boundary)
		if lo := i - (m.order - 1); lo > 0 {
			hist = append(hist[:0], ids[lo:i]...)
		} else {
			hist = append(hist, ids[:i]...)
		}
		chist := cids[max(0, i-(cacheOrder-1)):i]
		res.Tokens++
		if !m.isWordID(ids[i]) {
			res.OOV++
		}
		if got, _, ok := m.predict(sc, hist, c, chist, familyGo, "", 0, 0, nil); ok && got == cids[i] && isWord(c.key(got)) {
			res.Top1++
		}
		if got, _, ok := m.predict(sc, hist, nil, nil, familyGo, "", 0, 0, nil); ok && got == ids[i] && m.isWordID(got) {
			res.Top1NoCache++
		}
		if i > 0 && ids[i-1] != unknownID && m.baseline[ids[i-1]] == ids[i] && m.isWordID(ids[i]) {
			res.BaselineTop1++
		}
		c.add(cids[i])
	}
}

// evalLines cuts each line of src once and compares the completions of the
// model and of the baseline with the rest of the line.
func (m *Model) evalLines(ctx context.Context, f corpusFile, src []byte, toks []token, res *EvalResult) error {
	baseline := completeOptions{noCache: true, pred: func(g *generation, first bool) (uint32, bool) {
		if first && g.partial != "" {
			// The baseline cannot complete words: it takes the word as typed.
			return m.find(string([]byte{g.family, g.partialCode}) + g.partial)
		}
		hist := g.hist
		if len(hist) == 0 || hist[len(hist)-1] == unknownID {
			return 0, false
		}
		return m.baseline[hist[len(hist)-1]], true
	}}
	var got []byte
	collect := func(b []byte) error { got = append(got, b...); return nil }
	run := func(prefix, suffix []byte, opts completeOptions) (string, error) {
		got = got[:0]
		_, err := m.complete(ctx, Input{Prefix: prefix, Suffix: suffix, Language: f.lang, MaxTokens: 64}, collect, opts)
		return normalizeSpace(got), err
	}
	return eachCut(f, src, toks, func(cut, end int) error {
		prefix := src[:cut]
		want := normalizeSpace(src[cut:end])
		suffix := src[end:]
		res.Lines++
		out, err := run(prefix, suffix, completeOptions{minProb: m.minProb, greedy: true})
		if err != nil {
			return err
		}
		switch {
		case out == want:
			res.LineExact++
		case out == "":
			res.LineEmpty++
		case strings.HasPrefix(want, out):
			res.LinePrefix++
		}
		if out, err = run(prefix, suffix, completeOptions{noCache: true, greedy: true}); err != nil {
			return err
		} else if out == want {
			res.LineExactNoCache++
		}
		if out, err = run(prefix, suffix, baseline); err != nil {
			return err
		} else if out == want {
			res.BaselineExact++
		}
		return nil
	})
}

// eachCut calls fn once for every line of a file of tokens toks that has
// two tokens or more, with the cursor after one of them chosen by a hash of
// the file's name and the line (never the first): cut is the cursor's
// offset in src, end that of the end of the line's last token.
func eachCut(f corpusFile, src []byte, toks []token, fn func(cut, end int) error) error {
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
		if err := fn(toks[cut-1].end, last.end); err != nil {
			return err
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
