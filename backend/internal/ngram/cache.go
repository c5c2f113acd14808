package ngram

import "strings"

// cache is a small n-gram model of the request's own code: the tokens
// before the cursor and a little after it. It is built for one completion,
// lives in memory during that call only and is dropped with it; nothing
// in it reaches the model, its file or a log. It lets the model predict
// the file's own identifiers (local variables, the file's functions and
// types), which the corpus model cannot know, as cache language models of
// code do (Tu, Su and Devanbu, "On the localness of software", FSE 2014).
//
// Its ids are the model's word ids for tokens the model knows, and
// vocabSize+i for the i-th token outside the model's vocabulary.
type cache struct {
	m          *Model
	oov        []oovToken
	oovIDs     map[string]uint32
	classTotal map[uint32]uint32 // occurrences of out-of-vocabulary tokens per unknown class
	next       map[cacheContext][]follower
	hist       []uint32 // the last cacheOrder-1 ids added since the last reset
}

// cacheOrder is the longest n-gram the cache counts.
const cacheOrder = 4

// cacheWeight is how much the cache's prediction counts, by the length of
// the context it matched (index 1 to cacheOrder-1), before scaling by how
// often that context occurred. Tuned on held-out files.
var cacheWeight = [cacheOrder]float32{0, 0.1, 0.3, 0.5}

// maxOOV bounds the out-of-vocabulary tokens a cache keeps.
const maxOOV = 4096

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
	count uint32
}

func newCache(m *Model) *cache {
	return &cache{
		m: m, oovIDs: make(map[string]uint32), classTotal: make(map[uint32]uint32),
		next: make(map[cacheContext][]follower),
	}
}

// id returns the cache id of a token whose model id is modelID and whose
// key is key, adding it to the out-of-vocabulary tokens if needed. It
// returns unknownID when the cache is full.
func (c *cache) id(modelID uint32, key []byte) uint32 {
	if modelID != unknownID && isWord(c.m.key(modelID)) {
		return modelID
	}
	if id, ok := c.oovIDs[string(key)]; ok {
		return id
	}
	if len(c.oov) >= maxOOV {
		return unknownID
	}
	id := uint32(c.m.vocabSize() + len(c.oov))
	k := string(key)
	c.oovIDs[k] = id
	c.oov = append(c.oov, oovToken{key: k, class: modelID})
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
		o.count++
		if o.class != unknownID {
			c.classTotal[o.class]++
		}
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

// reset starts a new segment: the next token follows nothing.
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

// predict returns the most probable next token of family fam, or false
// when no candidate is acceptable. hist is the context in model ids; c
// (nil for none) is the request's cache and chist the context in cache
// ids. When partial is not empty the token's text must start with it; ok
// (nil for all) filters candidates by key. A token outside the model's
// vocabulary gets the probability of its unknown class, shared among the
// cache's tokens of that class by their counts; the class itself is then
// no candidate.
func (m *Model) predict(sc *scorer, hist []uint32, c *cache, chist []uint32, fam byte, partial string,
	ok func(key string) bool) (uint32, bool) {
	m.prepare(sc, hist)
	var fl []follower
	var total uint32
	var mu float32
	if c != nil {
		var k int
		fl, total, k = c.followers(chist)
		if total > 0 {
			mu = cacheWeight[k] * float32(total) / float32(total+1)
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
		if c != nil && id < v && c.classTotal[id] > 0 {
			return // the class's mass goes to its tokens in the cache
		}
		if ok != nil && !ok(key) {
			return
		}
		var p float32
		if id < v {
			p = m.prob(sc, id)
		} else if o := c.oov[id-v]; o.count == 0 {
			return // not seen yet
		} else if o.class != unknownID {
			p = m.prob(sc, o.class) * float32(o.count) / float32(c.classTotal[o.class])
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
		lo := m.textStart(fam, partial)
		for i := lo; i < len(m.byText); i++ {
			if k := m.key(m.byText[i]); k[0] != fam || !strings.HasPrefix(k[2:], partial) {
				break
			}
			try(m.byText[i])
		}
	}
	if c != nil {
		for _, f := range fl {
			try(f.id)
		}
		for i := range c.oov {
			try(v + uint32(i))
		}
	}
	return bestID, bestP >= 0
}
