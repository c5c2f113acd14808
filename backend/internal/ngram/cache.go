package ngram

import (
	"math"
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
	wordIdx   map[string]int32 // kind byte and text to index in words[kind]
	kindTotal [numKinds]uint32 // occurrences of unknown words per kind
	made      map[uint64]uint32 // layout, kind and word index: the cache id of that word in that layout
	next      map[cacheContext][]follower
	hist      []uint32 // the last cacheOrder-1 ids added since the last reset
}

// cacheOrder is the longest n-gram the cache counts.
const cacheOrder = 4

// cacheWeight is how much the cache's n-gram prediction counts, by the
// length of the context it matched (index 1 to cacheOrder-1), before
// scaling by c/(c+1) for a context seen c times. Tuned on held-out files.
var cacheWeight = [cacheOrder]float32{0, 0.1, 0.3, 0.5}

// maxOOV bounds the out-of-vocabulary tokens a cache keeps.
const maxOOV = 8192

type cacheContext struct {
	n   int
	ids [cacheOrder - 1]uint32
}

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

func newCache(m *Model) *cache {
	return &cache{
		m: m, oovIDs: make(map[string]uint32), wordIdx: make(map[string]int32),
		made: make(map[uint64]uint32), next: make(map[cacheContext][]follower),
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

// add counts id after the tokens added before it.
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
	for k := 1; k <= len(c.hist); k++ {
		ctx := cacheContext{n: k}
		copy(ctx.ids[:], c.hist[len(c.hist)-k:])
		fl := c.next[ctx]
		found := false
		for i := range fl {
			if fl[i].id == id {
				fl[i].count++
				found = true
				break
			}
		}
		if !found {
			c.next[ctx] = append(fl, follower{id: id, count: 1})
		}
	}
	if len(c.hist) == cacheOrder-1 {
		c.hist = append(c.hist[:0], c.hist[1:]...)
	}
	c.hist = append(c.hist, id)
}

// reset starts a new stretch: the next token follows nothing.
func (c *cache) reset() { c.hist = c.hist[:0] }

// followers returns what followed the longest context of hist seen in the
// cache, their total count, and the context's length (0 when none).
func (c *cache) followers(hist []uint32) ([]follower, uint32, int) {
	for k := min(cacheOrder-1, len(hist)); k >= 1; k-- {
		ctx := cacheContext{n: k}
		copy(ctx.ids[:], hist[len(hist)-k:])
		if fl := c.next[ctx]; len(fl) > 0 {
			var total uint32
			for _, f := range fl {
				total += f.count
			}
			return fl, total, k
		}
	}
	return nil, 0, 0
}

// unknownClass returns the kind of an unknown-class key.
func unknownClass(key string) (kind, bool) {
	if len(key) == 4 && key[1] == unkCode {
		return kind(key[2]), true
	}
	return 0, false
}

// predict returns the most probable next token of family fam, or false
// when no candidate is acceptable. hist is the context in model ids; c
// (nil for none) is the request's cache and chist the context in cache
// ids. When partial is not empty the token's text must start with it, and
// partialKind and partialCode are the partial word's kind and layout; ok
// (nil for all) filters candidates by key.
func (m *Model) predict(sc *scorer, hist []uint32, c *cache, chist []uint32, fam byte, partial string,
	partialKind kind, partialCode byte, ok func(key string) bool) (uint32, bool) {
	m.prepare(sc, hist)
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
	try := func(id uint32) {
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
			var n uint32
			for _, f := range fl {
				if f.id == id {
					n = f.count
					break
				}
			}
			p = (1-mu)*p + mu*float32(n)/float32(total)
		}
		if p > bestP || p == bestP && id < bestID {
			bestID, bestP = id, p
		}
	}
	if partial == "" {
		for _, id := range sc.touched {
			try(id)
		}
		for _, id := range m.topByFamily[fam] {
			try(id)
		}
	} else {
		for i := m.textStart(fam, partial); i < len(m.byText); i++ {
			if k := m.key(m.byText[i]); k[0] != fam || !strings.HasPrefix(k[2:], partial) {
				break
			}
			try(m.byText[i])
		}
	}
	if c == nil {
		return bestID, bestP >= 0
	}
	for _, f := range fl {
		try(f.id)
	}
	// The request's unknown words, in the layouts the model predicts for
	// unknown words of their kind (or, completing a partial word, in its
	// layout).
	classes := sc.classes[:0]
	if partial == "" {
		for _, list := range [][]uint32{sc.touched, m.topByFamily[fam]} {
			for _, id := range list {
				if k, unk := unknownClass(m.key(id)); unk && m.key(id)[0] == fam && c.kindTotal[k] > 0 {
					classes = append(classes, id)
				}
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
					try(id)
				}
			}
		}
	}
	return bestID, bestP >= 0 && !math.IsNaN(float64(bestP))
}
