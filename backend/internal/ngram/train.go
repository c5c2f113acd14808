package ngram

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// boundary is the token id that separates documents: the model's start and
// end of file.
const boundary = 0

// formatVersion is the version of the model file format and of the
// training procedure: a model built by another version is rebuilt.
const formatVersion = 2

// corpusStats describes a training run, for logs and the benchmark.
type corpusStats struct {
	Files, Skipped int
	Bytes          int64
	Tokens         int
	Duration       time.Duration
}

// shard is one training worker's private dictionary of token keys.
type shard struct {
	calls  map[string]uint32 // argument counts of calls (see arities)
	ids    map[string]uint32
	keys   []string
	kinds  []kind
	counts []uint32
}

// fileTokens is the token stream of one corpus file, in shard-local ids.
type fileTokens struct {
	shard int
	ids   []uint32
}

// train builds a model from files. It tokenizes on cfg.Workers goroutines,
// counts all n-grams up to cfg.Order by sorting token positions, and
// computes interpolated modified Kneser-Ney weights, pruning rare n-grams.
func train(ctx context.Context, cfg Config, files []corpusFile, log *slog.Logger) (*Model, corpusStats, error) {
	start := time.Now()
	var st corpusStats
	shards, streams, err := tokenizeCorpus(ctx, cfg, files, &st)
	if err != nil {
		return nil, st, err
	}
	vocab, remap := buildVocab(shards, cfg.VocabMinCount)
	// The corpus as one stream: boundary, file, boundary, file, ..., boundary.
	n := 1
	for _, f := range streams {
		if f.ids != nil {
			n += len(f.ids) + 1
		}
	}
	s := make([]uint32, 1, n)
	for i := range streams {
		f := &streams[i]
		if f.ids == nil {
			continue
		}
		m := remap[f.shard]
		for _, id := range f.ids {
			s = append(s, m[id])
		}
		s = append(s, boundary)
		f.ids = nil
	}
	streams, remap = nil, nil
	st.Tokens = len(s) - st.Files - 1
	log.Debug("ngram: corpus tokenized", "files", st.Files, "tokens", st.Tokens, "vocab", len(vocab),
		"elapsed", time.Since(start).Round(time.Millisecond))

	pos, err := sortPositions(ctx, s, len(vocab), cfg.Order, cfg.Workers)
	if err != nil {
		return nil, st, err
	}
	t := buildTrie(s, pos, cfg.Order)
	pos = nil
	if err := ctx.Err(); err != nil {
		return nil, st, err
	}
	m := t.estimate(vocab, cfg.MinCount)
	calls := make(map[string]uint32)
	for _, sh := range shards {
		for k, mask := range sh.calls {
			calls[k] |= mask
		}
	}
	m.arity = newArities(calls)
	st.Duration = time.Since(start)
	return m, st, nil
}

// tokenizeCorpus reads and tokenizes files on cfg.Workers goroutines. Each
// worker keeps its own dictionary; streams[i] holds file i's tokens.
func tokenizeCorpus(ctx context.Context, cfg Config, files []corpusFile, st *corpusStats) ([]*shard, []fileTokens, error) {
	shards := make([]*shard, cfg.Workers)
	streams := make([]fileTokens, len(files))
	var next atomic.Int64
	var skipped, nfiles, nbytes atomic.Int64
	errs := make([]error, cfg.Workers)
	var wg sync.WaitGroup
	for w := range cfg.Workers {
		sh := &shard{ids: make(map[string]uint32), calls: make(map[string]uint32)}
		shards[w] = sh
		wg.Go(func() {
			var toks []token
			var key []byte
			for {
				i := int(next.Add(1) - 1)
				if i >= len(files) {
					return
				}
				if i%64 == 0 && ctx.Err() != nil {
					errs[w] = ctx.Err()
					return
				}
				src, err := readFileLimited(files[i].path)
				if err != nil || isGenerated(src) {
					skipped.Add(1)
					continue
				}
				toks = layout(tokenize(toks[:0], src, files[i].lang), src)
				if len(toks) == 0 {
					skipped.Add(1)
					continue
				}
				fam := family(files[i].lang)
				if fam == familyGo {
					countCalls(toks, src, sh.calls)
				}
				ids := make([]uint32, len(toks))
				for j := range toks {
					key = appendKey(key[:0], fam, &toks[j])
					id, ok := sh.ids[string(key)]
					if !ok {
						id = uint32(len(sh.keys))
						k := string(key)
						sh.ids[k] = id
						sh.keys = append(sh.keys, k)
						sh.kinds = append(sh.kinds, toks[j].kind)
						sh.counts = append(sh.counts, 0)
					}
					sh.counts[id]++
					ids[j] = id
				}
				streams[i] = fileTokens{shard: w, ids: ids}
				nfiles.Add(1)
				nbytes.Add(int64(len(src)))
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	st.Files, st.Skipped, st.Bytes = int(nfiles.Load()), int(skipped.Load()), nbytes.Load()
	if st.Files == 0 {
		return nil, nil, fmt.Errorf("%w: no readable source files", ErrNoCorpus)
	}
	return shards, streams, nil
}

// buildVocab merges the shards' dictionaries. Keys seen fewer than minCount
// times fold into an unknown-token class per family, kind and layout. Ids
// are assigned by descending count (then key), after boundary at 0, so they
// do not depend on how files were spread over workers. remap[shard][local]
// is the final id.
func buildVocab(shards []*shard, minCount int) ([]string, [][]uint32) {
	counts := make(map[string]uint64)
	for _, sh := range shards {
		for i, k := range sh.keys {
			counts[k] += uint64(sh.counts[i])
		}
	}
	final := func(k string, kd kind) string {
		if counts[k] >= uint64(minCount) {
			return k
		}
		return unkKeyOf(k, kd)
	}
	merged := make(map[string]uint64)
	for _, sh := range shards {
		for i, k := range sh.keys {
			merged[final(k, sh.kinds[i])] += uint64(sh.counts[i])
		}
	}
	keys := make([]string, 0, len(merged))
	for k := range merged {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if c := cmp.Compare(merged[b], merged[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	vocab := append([]string{""}, keys...)
	ids := make(map[string]uint32, len(vocab))
	for i, k := range vocab {
		ids[k] = uint32(i)
	}
	remap := make([][]uint32, len(shards))
	for w, sh := range shards {
		remap[w] = make([]uint32, len(sh.keys))
		for i, k := range sh.keys {
			remap[w][i] = ids[final(k, sh.kinds[i])]
		}
	}
	return vocab, remap
}

// ngramLen is the length of the n-gram starting at p: up to n tokens,
// ending early after a boundary (a document's end) or at the stream's end.
func ngramLen(s []uint32, p, n int) int {
	for k := 1; k < n; k++ {
		if p+k >= len(s) || k >= 2 && s[p+k-1] == boundary {
			return k
		}
	}
	return n
}

// sortPositions returns every n-gram start position of s (all but the final
// boundary) sorted by the n-gram there, shorter before longer on a tie. It
// buckets by first token, then sorts buckets on the workers.
func sortPositions(ctx context.Context, s []uint32, vocab, n, workers int) ([]uint32, error) {
	start := make([]uint32, vocab+1)
	for _, id := range s[:len(s)-1] {
		start[id+1]++
	}
	for i := 1; i <= vocab; i++ {
		start[i] += start[i-1]
	}
	pos := make([]uint32, len(s)-1)
	fill := slices.Clone(start[:vocab])
	for p, id := range s[:len(s)-1] {
		pos[fill[id]] = uint32(p)
		fill[id]++
	}
	// Largest buckets first, so the workers finish together.
	order := make([]uint32, vocab)
	for i := range order {
		order[i] = uint32(i)
	}
	slices.SortFunc(order, func(a, b uint32) int {
		return cmp.Compare(start[b+1]-start[b], start[a+1]-start[a])
	})
	cmpPos := func(p, q uint32) int {
		for k := uint32(1); k < uint32(n); k++ {
			pa, qa := int(p+k) < len(s), int(q+k) < len(s)
			if !pa || !qa {
				return cmp.Compare(b2i(pa), b2i(qa))
			}
			a, b := s[p+k], s[q+k]
			if a != b {
				return cmp.Compare(a, b)
			}
			if a == boundary {
				return 0
			}
		}
		return 0
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(order) || ctx.Err() != nil {
					return
				}
				b := order[i]
				if start[b+1]-start[b] > 1 {
					slices.SortFunc(pos[start[b]:start[b+1]], cmpPos)
				}
			}
		})
	}
	wg.Wait()
	return pos, ctx.Err()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
