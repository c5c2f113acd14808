package ngram

import (
	"math"
	"slices"
	"strings"
)

// cache is a small model of the request's own code: the tokens before the
// cursor and a little after it. It is built for one completion, lives in
// memory during that call only and is dropped with it; nothing in it
// reaches the model, its file or a log. It lets the model name the file's
// own identifiers (local variables, the file's functions and types), which
// the corpus model cannot know, as cache language models of code do (Tu,
// Su and Devanbu, "On the localness of software", FSE 2014).
//
// It has two parts. An n-gram count of the request's tokens, mixed into
// the corpus model's prediction with a weight that grows with how long and
// how frequent the matched context is. And the request's words outside
// the corpus vocabulary: when the corpus model predicts an unknown
// identifier (or string, number, ...) in some layout, that probability is
// shared among the request's unknown words of the same kind, by how often
// each occurs.
//
// Cache ids are the model's ids for words the model knows, and
// vocabSize+i for the i-th out-of-vocabulary token (a word in one layout).
type cache struct {
	m         *Model
	oov       []oovToken
	oovIDs    map[string]uint32 // key to cache id
	words     [numKinds][]oovWord
	wordIdx   map[string]int32  // kind byte and text to index in words[kind]
	kindTotal [numKinds]uint32  // occurrences of unknown words per kind
	made      map[uint64]uint32 // layout, kind and word index: the cache id of that word in that layout
	seq       []uint32          // the ids added, unknownID between stretches
	found     [cacheOrder][]follower
}

// cacheOrder is the longest n-gram the cache counts.
const cacheOrder = 4

// cacheWeight is how much the cache's n-gram prediction counts, by the
// length of the context it matched (index 1 to cacheOrder-1), before
// scaling by c/(c+1) for a context seen c times. Tuned on held-out files.
var cacheWeight = [cacheOrder]float32{0, 0.2, 0.4, 0.6}

// maxOOV bounds the out-of-vocabulary tokens a cache keeps.
const maxOOV = 8192

// cacheWindow is how many of the last tokens added the n-gram part
// searches; Complete adds fewer.
const cacheWindow = 8192

type follower struct {
	id    uint32
	count uint32
}

type oovToken struct {
	key   string
	class uint32 // the model's id of the token's unknown class, or unknownID
	kind  kind
	word  int32 // index in words[kind]
}

type oovWord struct {
	text  string
	count uint32
}

// newCache returns an empty cache sized for about n tokens.
func newCache(m *Model, n int) *cache {
	return &cache{
		m: m, oovIDs: make(map[string]uint32, n/16), wordIdx: make(map[string]int32, n/16),
		made: make(map[uint64]uint32), seq: make([]uint32, 0, n),
	}
}

// id returns the cache id of a token of kind k whose model id is modelID
// and whose key is key, adding it to the out-of-vocabulary tokens if
// needed. It returns unknownID when the cache is full.
func (c *cache) id(modelID uint32, key []byte, k kind) uint32 {
	if modelID != unknownID && isWord(c.m.key(modelID)) {
		return modelID
	}
	if id, ok := c.oovIDs[string(key)]; ok {
		return id
	}
	return c.newOOV(string(key), modelID, k)
}

func (c *cache) newOOV(key string, class uint32, k kind) uint32 {
	if len(c.oov) >= maxOOV {
		return unknownID
	}
	wk := string(byte(k)) + key[2:]
	w, ok := c.wordIdx[wk]
	if !ok {
		w = int32(len(c.words[k]))
		c.wordIdx[wk] = w
		c.words[k] = append(c.words[k], oovWord{text: key[2:]})
	}
	id := uint32(c.m.vocabSize() + len(c.oov))
	c.oovIDs[key] = id
	c.oov = append(c.oov, oovToken{key: key, class: class, kind: k, word: w})
	return id
}

// madeID returns the cache id of unknown word w of kind k in family fam
// and layout code, whose unknown class is class, making the token up if
// the request never had the word in that layout.
func (c *cache) madeID(fam, code byte, class uint32, k kind, w int) uint32 {
	mk := uint64(code)<<40 | uint64(k)<<32 | uint64(w)
	if id, ok := c.made[mk]; ok {
		return id
	}
	key := string([]byte{fam, code}) + c.words[k][w].text
	id, ok := c.oovIDs[key]
	if !ok {
		id = c.newOOV(key, class, k)
	}
	c.made[mk] = id
	return id
}

// key returns the key of a cache id.
func (c *cache) key(id uint32) string {
	if v := uint32(c.m.vocabSize()); id >= v {
		return c.oov[id-v].key
	}
	return c.m.key(id)
}

// add appends id to the cache's tokens.
func (c *cache) add(id uint32) {
	if id == unknownID {
		c.reset()
		return
	}
	if v := uint32(c.m.vocabSize()); id >= v {
		o := &c.oov[id-v]
		c.words[o.kind][o.word].count++
		c.kindTotal[o.kind]++
	}
	c.seq = append(c.seq, id)
}

// reset starts a new stretch: the next token follows nothing.
func (c *cache) reset() {
	if n := len(c.seq); n > 0 && c.seq[n-1] != unknownID {
		c.seq = append(c.seq, unknownID)
	}
}

// followers returns what followed the longest context of hist (up to
// cacheOrder-1 tokens) in the cache's last cacheWindow tokens, their total
// count, and the context's length (0 when none). It scans the tokens
// once; the slice is valid until the next call.
func (c *cache) followers(hist []uint32) ([]follower, uint32, int) {
	h := hist[max(0, len(hist)-(cacheOrder-1)):]
	for k := range c.found {
		c.found[k] = c.found[k][:0]
	}
	if len(h) == 0 || h[len(h)-1] == unknownID {
		return nil, 0, 0
	}
	seq := c.seq[max(0, len(c.seq)-cacheWindow):]
	last := h[len(h)-1]
	for i := 1; i < len(seq); i++ {
		if seq[i-1] != last || seq[i] == unknownID {
			continue
		}
		// How far back the context matches, up to len(h).
		k := 1
		for k < len(h) && i-1-k >= 0 && seq[i-1-k] == h[len(h)-1-k] && seq[i-1-k] != unknownID {
			k++
		}
		for j := 1; j <= k; j++ {
			c.found[j] = addFollower(c.found[j], seq[i])
		}
	}
	for k := len(h); k >= 1; k-- {
		if fl := c.found[k]; len(fl) > 0 {
			var total uint32
			for _, f := range fl {
				total += f.count
			}
			return fl, total, k
		}
	}
	return nil, 0, 0
}

func addFollower(fl []follower, id uint32) []follower {
	for i := range fl {
		if fl[i].id == id {
			fl[i].count++
			return fl
		}
	}
	return append(fl, follower{id: id, count: 1})
}

// unknownClass returns the kind of an unknown-class key.
func unknownClass(key string) (kind, bool) {
	if len(key) == 4 && key[1] == unkCode {
		return kind(key[2]), true
	}
	return 0, false
}

// predict returns the most probable next token of family fam and its
// probability, or false
// when no candidate is acceptable. hist is the context in model ids; c
// (nil for none) is the request's cache and chist the context in cache
// ids. When partial is not empty the token's text must start with it, and
// partialKind and partialCode are the partial word's kind and layout; ok
// (nil for all) filters candidates by key.
func (m *Model) predict(sc *scorer, hist []uint32, c *cache, chist []uint32, fam byte, partial string,
	partialKind kind, partialCode byte, ok func(key string) bool) (uint32, float32, bool) {
	m.prepare(sc, hist)
	if sc.norm && sc.mass == nil {
		sc.mass = make(map[uint32]float32)
	}
	var fl []follower
	var total uint32
	var mu, maxCached float32
	if c != nil {
		var k int
		fl, total, k = c.followers(chist)
		if total > 0 {
			mu = cacheWeight[k] * float32(total) / float32(total+1)
			for _, f := range fl {
				maxCached = max(maxCached, float32(f.count)/float32(total))
			}
		}
	}
	keyOf := m.key
	if c != nil {
		keyOf = c.key
	}
	v := uint32(m.vocabSize())
	var bestID uint32
	var bestP float32 = -1
	// try scores id, seen n times after the cache's context. Every id of fl
	// is tried with its count; other candidates with 0.
	try := func(id, n uint32) {
		// The score first, which is cheap: most candidates lose.
		var p float32
		if id < v {
			p = m.prob(sc, id)
		} else {
			o := &c.oov[id-v]
			w := c.words[o.kind][o.word]
			if w.count == 0 {
				return // not seen yet
			}
			if o.class != unknownID {
				p = m.prob(sc, o.class) * float32(w.count) / float32(c.kindTotal[o.kind])
			}
		}
		if mu > 0 {
			p = (1-mu)*p + mu*float32(n)/float32(total)
		}
		loses := p < bestP || p == bestP && id > bestID
		if loses && !sc.norm {
			return
		}
		key := keyOf(id)
		if key == "" || key[0] != fam || partial != "" && (!isWord(key) || !strings.HasPrefix(key[2:], partial)) {
			return
		}
		if k, unk := unknownClass(key); unk && c != nil && c.kindTotal[k] > 0 {
			return // the class's probability goes to the request's words
		}
		if ok != nil && !ok(key) {
			return
		}
		if sc.norm {
			sc.mass[id] = max(sc.mass[id], p)
		}
		if !loses {
			bestID, bestP = id, p
		}
	}
	if partial == "" {
		for _, id := range sc.touched {
			try(id, 0)
		}
		for _, id := range m.topByFamily[fam] {
			try(id, 0)
		}
	} else {
		for i := m.textStart(fam, partial); i < len(m.byText); i++ {
			if k := m.key(m.byText[i]); k[0] != fam || !strings.HasPrefix(k[2:], partial) {
				break
			}
			try(m.byText[i], 0)
		}
	}
	if c == nil {
		return bestID, sc.normalize(bestP), bestP >= 0
	}
	for _, f := range fl {
		try(f.id, f.count)
	}
	// The request's unknown words, in the layouts the model predicts for
	// unknown words of their kind (or, completing a partial word, in its
	// layout).
	classes := sc.classes[:0]
	if partial == "" {
		// The family's unknown classes among the candidates: those with a
		// higher-order term, or among the top unigrams.
		for _, id := range m.unkByFamily[fam] {
			if k, _ := unknownClass(m.key(id)); c.kindTotal[k] > 0 &&
				(sc.score[id] != 0 || slices.Contains(m.topByFamily[fam], id)) {
				classes = append(classes, id)
			}
		}
	} else if c.kindTotal[partialKind] > 0 {
		u, _ := m.find(string([]byte{fam, unkCode, byte(partialKind), partialCode}))
		classes = append(classes, u)
	}
	sc.classes = classes
	for _, u := range classes {
		k, code := partialKind, partialCode
		var pu float32
		if u != unknownID {
			key := m.key(u)
			k, code = kind(key[2]), key[3]
			pu = m.prob(sc, u)
		}
		if (1-mu)*pu+mu*maxCached < bestP {
			continue // no word of this class can win
		}
		for w := range c.words[k] {
			if partial == "" || strings.HasPrefix(c.words[k][w].text, partial) {
				if id := c.madeID(fam, code, u, k, w); id != unknownID {
					try(id, 0) // if the cache saw it here, the fl loop scored it
				}
			}
		}
	}
	return bestID, sc.normalize(bestP), bestP >= 0 && !math.IsNaN(float64(bestP))
}

// normalize returns p as a share of the probability of the acceptable
// candidates, when the scorer was asked to (sc.norm): the first token's
// probability given what the user typed (the partial word, the layout).
func (sc *scorer) normalize(p float32) float32 {
	if !sc.norm {
		return p
	}
	var total float32
	for id, q := range sc.mass {
		total += q
		delete(sc.mass, id)
	}
	if total <= 0 || p <= 0 {
		return p
	}
	return min(1, p/total)
}
