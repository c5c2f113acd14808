package ngram

// countLevel holds the distinct n-grams of one length during training, in
// lexicographic order: node i's last token, its raw count, and (below the
// top level) where its children start in the next level. Node i's children
// are child[i] up to child[i+1] (or the next level's end for the last node).
type countLevel struct {
	tok   []uint32
	cnt   []uint32
	child []uint32
}

// trie is every distinct n-gram of the training stream with its count.
// Level 0 holds unigrams, indexed by token id.
type trie struct {
	levels []countLevel
}

// buildTrie counts the n-grams at the sorted positions pos of s. Equal
// n-gram prefixes are adjacent in pos, so one pass builds every level.
func buildTrie(s []uint32, pos []uint32, n int) *trie {
	t := &trie{levels: make([]countLevel, n)}
	cur := make([]int, n)
	prev, prevLen := -1, 0
	for _, pu := range pos {
		p := int(pu)
		l := ngramLen(s, p, n)
		lcp := 0
		if prev >= 0 {
			for lcp < min(l, prevLen) && s[prev+lcp] == s[p+lcp] {
				lcp++
			}
		}
		for d := lcp; d < l; d++ {
			lv := &t.levels[d]
			cur[d] = len(lv.tok)
			lv.tok = append(lv.tok, s[p+d])
			lv.cnt = append(lv.cnt, 0)
			if d+1 < n {
				lv.child = append(lv.child, uint32(len(t.levels[d+1].tok)))
			}
		}
		for d := range l {
			t.levels[d].cnt[cur[d]]++
		}
		prev, prevLen = p, l
	}
	for d := 0; d+1 < n; d++ {
		t.levels[d].child = append(t.levels[d].child, uint32(len(t.levels[d+1].tok)))
	}
	return t
}

// children returns the index range of node i's children at level d+1.
func (t *trie) children(d, i int) (int, int) {
	c := t.levels[d].child
	return int(c[i]), int(c[i+1])
}

// findChild returns the index at level d+1 of node i's child with token
// tok, or -1.
func (t *trie) findChild(d, i int, tok uint32) int {
	lo, hi := t.children(d, i)
	toks := t.levels[d+1].tok
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if toks[m] < tok {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(toks) && lo < int(t.levels[d].child[i+1]) && toks[lo] == tok {
		return lo
	}
	return -1
}

// continuation returns, for every level but the top, the Kneser-Ney count
// of each n-gram: how many distinct tokens precede it. It walks suffix
// links: the suffix of node w0..wd is the child wd of the suffix of
// w0..wd-1. N-grams that start with boundary have no predecessor and keep
// their raw count.
func (t *trie) continuation() [][]uint32 {
	n := len(t.levels)
	cont := make([][]uint32, n-1)
	for d := range n - 1 {
		cont[d] = make([]uint32, len(t.levels[d].tok))
	}
	// suf[i] is the index at level d-1 of the suffix of node i at level d.
	var suf []uint32
	for d := 1; d < n; d++ {
		lv := &t.levels[d]
		next := make([]uint32, len(lv.tok))
		parent := &t.levels[d-1]
		for pi := range parent.tok {
			lo, hi := t.children(d-1, pi)
			for x := lo; x < hi; x++ {
				var s int
				if d == 1 {
					s = int(lv.tok[x]) // unigrams are indexed by token
				} else {
					s = t.findChild(d-2, int(suf[pi]), lv.tok[x])
					if s < 0 {
						panic("ngram: trie lacks the suffix of an n-gram")
					}
				}
				next[x] = uint32(s)
				cont[d-1][s]++
			}
		}
		suf = next
	}
	// N-grams that start with boundary come first at every level.
	end := 1
	for d := range n - 1 {
		for i := range end {
			cont[d][i] = t.levels[d].cnt[i]
		}
		if d+1 < n {
			end = int(t.levels[d].child[end])
		}
	}
	return cont
}

// discounts are modified Kneser-Ney's three discounts for one level: for
// n-grams seen once, twice, and three or more times.
type discounts [3]float64

// estimateDiscounts computes Chen and Goodman's discounts from a level's
// count-of-counts.
func estimateDiscounts(counts []uint32) discounts {
	var n [5]float64
	for _, c := range counts {
		if c >= 1 && c <= 4 {
			n[c]++
		}
	}
	if n[1] == 0 || n[2] == 0 {
		return discounts{0.5, 0.5, 0.5} // too little data to estimate anything
	}
	y := n[1] / (n[1] + 2*n[2])
	if n[3] == 0 || n[4] == 0 {
		return discounts{y, y, y} // original Kneser-Ney's single discount
	}
	d := discounts{1 - 2*y*n[2]/n[1], 2 - 3*y*n[3]/n[2], 3 - 4*y*n[4]/n[3]}
	for i := range d {
		if d[i] <= 0 || d[i] >= float64(i+1) {
			// Out of range on a small or odd corpus: fall back to one discount.
			return discounts{y, y, y}
		}
	}
	return d
}

func (d discounts) of(c uint32) float64 {
	switch c {
	case 0:
		return 0
	case 1:
		return d[0]
	case 2:
		return d[1]
	}
	return d[2]
}
