package complete

import (
	"container/list"
	"hash/maphash"
	"strings"
	"sync"
	"time"
)

// Bytes of context that key the cache: the end of the prefix and the start of the suffix.
const (
	keyPrefixBytes = 2048
	keySuffixBytes = 512
)

// cache is an LRU of raw suggestions with a time to live, keyed by a hash of their context.
// It holds no context, only the hash and the suggestion.
type cache struct {
	seed maphash.Seed
	max  int
	ttl  time.Duration

	mu  sync.Mutex
	ll  *list.List // of *entry, most recent first
	idx map[uint64]*list.Element
}

type entry struct {
	key  uint64
	doc  string // the document it was made for (Input.DocKey)
	text string
	at   time.Time
}

func newCache(max int, ttl time.Duration) *cache {
	return &cache{seed: maphash.MakeSeed(), max: max, ttl: ttl, ll: list.New(), idx: map[uint64]*list.Element{}}
}

// key hashes what decides a suggestion: the text near the cursor, the language, the model and
// the mode.
func (c *cache) key(prefix, suffix, language, model string, multiline bool) uint64 {
	var h maphash.Hash
	h.SetSeed(c.seed)
	writeField(&h, prefix[max(0, len(prefix)-keyPrefixBytes):])
	writeField(&h, suffix[:min(len(suffix), keySuffixBytes)])
	writeField(&h, language)
	writeField(&h, model)
	if multiline {
		h.WriteByte(1)
	}
	return h.Sum64()
}

// writeField writes s and its length, so that fields cannot run into each other.
func writeField(h *maphash.Hash, s string) {
	n := len(s)
	h.Write([]byte{byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24)})
	h.WriteString(s)
}

func (c *cache) get(key uint64, now time.Time) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el := c.idx[key]
	if el == nil {
		return "", false
	}
	e := el.Value.(*entry)
	if now.Sub(e.at) > c.ttl {
		c.ll.Remove(el)
		delete(c.idx, key)
		return "", false
	}
	c.ll.MoveToFront(el)
	return e.text, true
}

func (c *cache) put(key uint64, doc, text string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el := c.idx[key]; el != nil {
		e := el.Value.(*entry)
		e.doc, e.text, e.at = doc, text, now
		c.ll.MoveToFront(el)
		return
	}
	if c.ll.Len() >= c.max {
		// Full: the least recent entry makes room, and its element and entry are reused.
		el := c.ll.Back()
		e := el.Value.(*entry)
		delete(c.idx, e.key)
		*e = entry{key: key, doc: doc, text: text, at: now}
		c.ll.MoveToFront(el)
		c.idx[key] = el
		return
	}
	c.idx[key] = c.ll.PushFront(&entry{key: key, doc: doc, text: text, at: now})
}

// forget drops the suggestions made for doc: the document was closed, and what was made of
// it goes with it.
func (c *cache) forget(doc string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for el := c.ll.Front(); el != nil; {
		next := el.Next()
		if e := el.Value.(*entry); e.doc == doc {
			c.ll.Remove(el)
			delete(c.idx, e.key)
		}
		el = next
	}
}

// ahead is the last suggestion shown for a document, for typed-ahead reuse: if the user types
// its start, the rest is still the answer.
type ahead struct {
	off    int    // where the suggestion was made
	before uint64 // hash of the text just before off
	after  uint64 // hash of the text just after off
	text   string // the post-processed suggestion
	model  string // Engine.model of the request that made it
	at     time.Time
}

const (
	aheadContext = 256 // bytes hashed on each side
	maxAhead     = 512 // documents remembered
)

func (e *Engine) hashAround(text string, off int) (before, after uint64) {
	return maphash.String(e.cache.seed, text[max(0, off-aheadContext):off]),
		maphash.String(e.cache.seed, text[off:min(len(text), off+aheadContext)])
}

// aheadAt is the typed-ahead entry of text suggested at in's cursor.
func (e *Engine) aheadAt(in Input, text string, now time.Time) ahead {
	before, after := e.hashAround(in.Text, in.Offset)
	return ahead{off: in.Offset, before: before, after: after, text: text, model: e.model(in), at: now}
}

// same reports whether a and b are one suggestion at one place.
func (a ahead) same(b ahead) bool {
	return a.off == b.off && a.before == b.before && a.after == b.after && a.text == b.text && a.model == b.model
}

// remember keeps the suggestion just made at in's cursor.
func (e *Engine) remember(in Input, text string, now time.Time) {
	a := e.aheadAt(in, text, now)
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.ahead[in.DocKey]; !ok && len(e.ahead) >= maxAhead {
		for k := range e.ahead {
			delete(e.ahead, k)
			break
		}
	}
	e.ahead[in.DocKey] = a
}

// typedAhead answers from the document's last suggestion when the user has typed its start
// and changed nothing else around the cursor.
func (e *Engine) typedAhead(in Input, now time.Time) (Result, bool) {
	if in.Selected != nil {
		return Result{}, false
	}
	e.mu.Lock()
	a, ok := e.ahead[in.DocKey]
	e.mu.Unlock()
	if !ok || now.Sub(a.at) > e.cfg.CacheTTL || a.model != e.model(in) {
		return Result{}, false
	}
	// Nothing typed (the same cursor: the cache's case) or all of it: no rest to show.
	if typed := in.Offset - a.off; typed <= 0 || typed >= len(a.text) {
		return Result{}, false
	}
	typed, ok := e.typedOf(in, a)
	if !ok {
		return Result{}, false
	}
	rest := a.text[typed:]
	if strings.TrimSpace(rest) == "" {
		return Result{}, false
	}
	return Result{FromCache: true, Items: []Item{{InsertText: rest, Start: in.Offset, End: in.Offset, ID: e.newID()}}}, true
}

// typedOf returns how much of a's suggestion the user has typed at in's cursor (all of it
// included), and false when in's text around it is not a's context with that much typed.
func (e *Engine) typedOf(in Input, a ahead) (int, bool) {
	typed := in.Offset - a.off
	if typed < 0 || typed > len(a.text) || a.off > len(in.Text) {
		return 0, false
	}
	if in.Text[a.off:in.Offset] != a.text[:typed] {
		return 0, false
	}
	before, _ := e.hashAround(in.Text, a.off)
	_, after := e.hashAround(in.Text, in.Offset)
	if before != a.before || after != a.after {
		return 0, false
	}
	return typed, true
}
