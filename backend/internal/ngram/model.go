package ngram

import (
	"cmp"
	"slices"
	"strings"
	"sync"
)

// Model is a trained n-gram model of code tokens. It is immutable once
// built or loaded, and safe for concurrent use.
type Model struct {
	order     int
	keys      string   // every token's key (see appendKey), concatenated
	keyOff    []uint32 // token id i has key keys[keyOff[i]:keyOff[i+1]]; boundary's is ""
	byKey     []uint32 // token ids sorted by key, to look keys up
	byText    []uint32 // word ids sorted by family and text, to complete a partial word
	topUni    []uint32 // per family, the most probable unigrams, best first
	levels    []level
	rootGamma float32  // weight of the uniform distribution under the unigrams
	baseline  []uint32 // most frequent follower of each token, for evaluation
	arity     arities  // argument counts of package functions' calls in the Go corpus
	info      Info

	minProb float32 // Config.MinTokenProb

	// Derived when built or loaded, never stored.
	topByFamily map[byte][]uint32
	unkByFamily map[byte][]uint32 // the unknown-token classes of each family
	scratch     sync.Pool         // *scorer
}

// level is one order of the model. Level 0 holds the unigrams indexed by
// token id (tok is nil); level d holds n-grams of d+1 tokens, each node's
// children (the tokens seen after it) contiguous and sorted by token.
type level struct {
	tok   []uint32  // last token of the n-gram (nil at level 0)
	alpha []float32 // discounted probability of tok after the parent context
	child []uint32  // children of node i: child[i] to child[i+1] in the next level
	gamma []float32 // backoff weight of node i as a context
}

// Info describes a model.
type Info struct {
	Order       int
	Vocab       int
	Nodes       []int // n-grams kept per order, unigrams first
	Fingerprint [32]byte
	FileBytes   int64 // size of the model file, once saved or loaded
}

// Info describes m.
func (m *Model) Info() Info { return m.info }

// topUnigrams is how many of the most probable unigrams of the request's
// language family are candidates at every step, beside the tokens seen
// after the context.
const topUnigrams = 32

// key returns the key of token id.
func (m *Model) key(id uint32) string { return m.keys[m.keyOff[id]:m.keyOff[id+1]] }

// isWordID reports whether id is a token with text.
func (m *Model) isWordID(id uint32) bool { return int(id) < m.vocabSize() && isWord(m.key(id)) }

// vocabSize is the number of token ids.
func (m *Model) vocabSize() int { return len(m.keyOff) - 1 }

// index builds the vocabulary tables of a newly trained model from its keys
// (id order) and unigram weights.
func (m *Model) index(vocab []string) {
	var sb strings.Builder
	m.keyOff = make([]uint32, 1, len(vocab)+1)
	for _, k := range vocab {
		sb.WriteString(k)
		m.keyOff = append(m.keyOff, uint32(sb.Len()))
	}
	m.keys = sb.String()
	m.byKey = make([]uint32, len(vocab))
	for i := range m.byKey {
		m.byKey[i] = uint32(i)
	}
	slices.SortFunc(m.byKey, func(a, b uint32) int { return strings.Compare(vocab[a], vocab[b]) })
	for i, k := range vocab {
		if isWord(k) {
			m.byText = append(m.byText, uint32(i))
		}
	}
	slices.SortStableFunc(m.byText, func(a, b uint32) int { return compareText(vocab[a], vocab[b][0], vocab[b][2:]) })
	uni := make([]uint32, 0, len(vocab))
	for i := range vocab {
		if i != boundary {
			uni = append(uni, uint32(i))
		}
	}
	a := m.levels[0].alpha
	slices.SortStableFunc(uni, func(x, y uint32) int {
		if c := cmp.Compare(vocab[x][0], vocab[y][0]); c != 0 {
			return c
		}
		return cmp.Compare(a[y], a[x])
	})
	perFamily := map[byte]int{}
	for _, id := range uni {
		if f := vocab[id][0]; perFamily[f] < topUnigrams {
			perFamily[f]++
			m.topUni = append(m.topUni, id)
		}
	}
}

// derive builds what is not stored in the model file.
func (m *Model) derive() {
	m.topByFamily = make(map[byte][]uint32)
	for _, id := range m.topUni {
		f := m.key(id)[0]
		m.topByFamily[f] = append(m.topByFamily[f], id)
	}
	m.unkByFamily = make(map[byte][]uint32)
	for id := range uint32(m.vocabSize()) {
		if k := m.key(id); len(k) > 1 && k[1] == unkCode {
			m.unkByFamily[k[0]] = append(m.unkByFamily[k[0]], id)
		}
	}
	m.info.Order = m.order
	m.info.Vocab = m.vocabSize()
	m.info.Nodes = make([]int, m.order)
	for d := range m.levels {
		m.info.Nodes[d] = len(m.levels[d].alpha)
	}
	m.scratch.New = func() any { return &scorer{score: make([]float32, m.vocabSize())} }
}

// unknownID stands for a token the model has no id for, not even an unknown
// class: no context contains it.
const unknownID = ^uint32(0)

// compareText orders a key by family and text against a family and text.
func compareText(key string, fam byte, text string) int {
	if c := cmp.Compare(key[0], fam); c != 0 {
		return c
	}
	return strings.Compare(key[2:], text)
}

// lookup returns the id of t in family fam: its own key, else its
// unknown-token class.
func (m *Model) lookup(fam byte, t *token, buf []byte) (uint32, []byte) {
	buf = appendKey(buf[:0], fam, t)
	if id, ok := m.find(string(buf)); ok {
		return id, buf
	}
	buf = appendUnkKey(buf[:0], fam, t)
	if id, ok := m.find(string(buf)); ok {
		return id, buf
	}
	return unknownID, buf
}

// find returns the id of a key.
func (m *Model) find(key string) (uint32, bool) {
	i, ok := slices.BinarySearchFunc(m.byKey, key, func(id uint32, k string) int { return strings.Compare(m.key(id), k) })
	if !ok {
		return unknownID, false
	}
	return m.byKey[i], true
}

// findChild returns the index at level d+1 of node i's child with token
// tok, or -1.
func (m *Model) findChild(d, i int, tok uint32) int {
	lo, hi := int(m.levels[d].child[i]), int(m.levels[d].child[i+1])
	toks := m.levels[d+1].tok
	j, found := slices.BinarySearch(toks[lo:hi], tok)
	if !found {
		return -1
	}
	return lo + j
}

// contexts fills nodes[k] with the level-k node of the context made of the
// last k+1 tokens of hist, for as long as such contexts exist, and returns
// how many it found.
func (m *Model) contexts(hist []uint32, nodes []int) int {
	found := 0
	for k := 0; k < m.order-1 && k < len(hist); k++ {
		h := hist[len(hist)-1-k:]
		if h[0] == unknownID || int(h[0]) >= m.vocabSize() {
			break
		}
		i := int(h[0])
		for d := 1; d <= k && i >= 0; d++ {
			if h[d] == unknownID {
				i = -1
				break
			}
			i = m.findChild(d-1, i, h[d])
		}
		if i < 0 {
			break
		}
		nodes[k] = i
		found++
	}
	return found
}

// scorer accumulates next-token probabilities for one step. score is dense
// over the vocabulary and all zero between steps.
type scorer struct {
	score   []float32
	touched []uint32
	classes []uint32 // unknown classes among the candidates, for the cache
	nodes   [16]int
	uniW    float32 // weight of the unigram level
	uniform float32 // probability mass every token gets from the uniform level
	// norm asks predict for the winner's share of the acceptable
	// candidates' probability, which it sums in mass.
	norm bool
	mass map[uint32]float32
}

// prepare scores every token seen after the contexts of hist: the terms
// of the interpolated probability above the unigram level.
func (m *Model) prepare(sc *scorer, hist []uint32) {
	for _, id := range sc.touched {
		sc.score[id] = 0
	}
	sc.touched = sc.touched[:0]
	found := m.contexts(hist, sc.nodes[:])
	w := float32(1)
	for k := found - 1; k >= 0; k-- {
		lv, i := &m.levels[k], sc.nodes[k]
		lo, hi := lv.child[i], lv.child[i+1]
		next := &m.levels[k+1]
		for x := lo; x < hi; x++ {
			id := next.tok[x]
			if sc.score[id] == 0 {
				sc.touched = append(sc.touched, id)
			}
			sc.score[id] += w * next.alpha[x]
		}
		w *= lv.gamma[i]
	}
	sc.uniW = w
	sc.uniform = w * m.rootGamma / float32(m.vocabSize())
}

// prob is the interpolated probability of id after prepare.
func (m *Model) prob(sc *scorer, id uint32) float32 {
	return sc.score[id] + sc.uniW*m.levels[0].alpha[id] + sc.uniform
}

// textStart returns the index in byText of the first word of family fam
// whose text is not before partial.
func (m *Model) textStart(fam byte, partial string) int {
	i, _ := slices.BinarySearchFunc(m.byText, partial, func(id uint32, p string) int {
		return compareText(m.key(id), fam, p)
	})
	return i
}
