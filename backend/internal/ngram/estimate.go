package ngram

// estimate turns counts into a model: interpolated modified Kneser-Ney
// (Chen and Goodman 1998). For a context h and its suffix h',
//
//	P(w|h) = max(c(hw) - D(c(hw)), 0) / c(h·) + gamma(h) P(w|h')
//	gamma(h) = (D1 N1(h·) + D2 N2(h·) + D3 N3+(h·)) / c(h·)
//
// where c is the raw count at the top order and the continuation count
// (distinct predecessors) below it, and the unigram level interpolates with
// the uniform distribution. Weights are computed from all counts; then
// n-grams of two or more tokens seen fewer than minCount times are dropped,
// which only removes their own term.
func (t *trie) estimate(vocab []string, minCount int) *Model {
	n := len(t.levels)
	cont := t.continuation()
	used := func(d int) []uint32 {
		if d == n-1 {
			return t.levels[d].cnt
		}
		return cont[d]
	}
	disc := make([]discounts, n)
	for d := range n {
		disc[d] = estimateDiscounts(used(d))
	}
	m := &Model{order: n, levels: make([]level, n)}

	// Unigrams against the uniform distribution.
	u0 := used(0)
	total, backoff := mass(u0, disc[0])
	m.rootGamma = float32(backoff / total)
	m.levels[0].alpha = make([]float32, len(u0))
	for i, c := range u0 {
		m.levels[0].alpha[i] = float32((float64(c) - disc[0].of(c)) / total)
	}
	for d := 0; d+1 < n; d++ {
		lv := &m.levels[d]
		lv.gamma = make([]float32, len(t.levels[d].tok))
		uc := used(d + 1)
		alpha := make([]float32, len(uc))
		for i := range lv.gamma {
			lo, hi := t.children(d, i)
			total, backoff := mass(uc[lo:hi], disc[d+1])
			if total == 0 {
				lv.gamma[i] = 1
				continue
			}
			lv.gamma[i] = float32(backoff / total)
			for x := lo; x < hi; x++ {
				alpha[x] = float32((float64(uc[x]) - disc[d+1].of(uc[x])) / total)
			}
		}
		m.levels[d+1].alpha = alpha
	}
	m.baseline = t.baseline()
	t.prune(m, minCount)
	m.index(vocab)
	return m
}

// mass returns the total count of a context's followers and the mass its
// discounts free for backing off.
func mass(counts []uint32, d discounts) (total, backoff float64) {
	for _, c := range counts {
		total += float64(c)
		backoff += d.of(c)
	}
	return total, backoff
}

// baseline is, for every token, the token that most often follows it in
// the corpus (ties to the lower id): the trivial predictor the evaluation
// compares against.
func (t *trie) baseline() []uint32 {
	lv0, lv1 := &t.levels[0], &t.levels[1]
	b := make([]uint32, len(lv0.tok))
	for i := range b {
		lo, hi := t.children(0, i)
		best, bestCount := uint32(1), uint32(0)
		for x := lo; x < hi; x++ {
			if lv1.cnt[x] > bestCount {
				best, bestCount = lv1.tok[x], lv1.cnt[x]
			}
		}
		b[i] = best
	}
	return b
}

// prune copies into m the n-grams of two or more tokens whose raw count is
// at least minCount. A child's count never exceeds its parent's, so kept
// nodes always have kept parents and children stay contiguous.
func (t *trie) prune(m *Model, minCount int) {
	n := len(t.levels)
	var keep []bool
	for d := range n {
		src, dst := &t.levels[d], &m.levels[d]
		if d == 0 {
			keep = nil
		} else {
			keep = make([]bool, len(src.tok))
			kept := 0
			for x, c := range src.cnt {
				keep[x] = c >= uint32(minCount)
				kept += b2i(keep[x])
			}
			// Remap the parents' child offsets to kept indexes.
			rank := make([]uint32, len(src.tok)+1)
			for x := range src.tok {
				rank[x+1] = rank[x] + uint32(b2i(keep[x]))
			}
			parent := &m.levels[d-1]
			for i, c := range parent.child {
				parent.child[i] = rank[c]
			}
			dst.tok = make([]uint32, 0, kept)
			alpha := make([]float32, 0, kept)
			for x, k := range keep {
				if k {
					dst.tok = append(dst.tok, src.tok[x])
					alpha = append(alpha, dst.alpha[x])
				}
			}
			dst.alpha = alpha
		}
		if d+1 < n {
			// Copy this level's child offsets and gammas, dropping pruned nodes;
			// the offsets are remapped when the next level is pruned.
			child := make([]uint32, 0, len(src.child))
			gamma := make([]float32, 0, len(src.child))
			for x := range src.tok {
				if keep == nil || keep[x] {
					child = append(child, src.child[x])
					gamma = append(gamma, dst.gamma[x])
				}
			}
			dst.child = append(child, src.child[len(src.tok)])
			dst.gamma = gamma
		}
		t.levels[d] = countLevel{} // free as we go
	}
}
