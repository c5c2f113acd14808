package ngram

import (
	"bytes"
	"context"
	"strings"
)

// Stats describes one completion.
type Stats struct {
	PromptTokens     int    // tokens of the prefix the model read
	CompletionTokens int    // tokens generated
	FinishReason     string // "stop" or "length"
}

// Finish reasons.
const (
	FinishStop   = "stop"
	FinishLength = "length"
)

const (
	// maxPrefixBytes is how much of the prefix is read: the end of it, from a
	// line start. The last few tokens are the context; all of them fill the
	// request's cache.
	maxPrefixBytes = 16 << 10
	// maxSuffixBytes is how much of the suffix fills the request's cache.
	maxSuffixBytes = 4 << 10
	// defaultMaxTokens is the token budget when the caller gives none.
	defaultMaxTokens = 64
	// Greedy n-gram decoding can loop: generation stops before a run of up
	// to shortRepeat tokens would occur three times in a row, or a longer
	// run of up to maxRepeat tokens twice.
	shortRepeat = 5
	maxRepeat   = 32
	// blankStopLines: a multi-line completion that has this many lines stops
	// at a blank line even inside a block it opened.
	blankStopLines = 3
)

// Input is one completion request.
type Input struct {
	Prefix, Suffix []byte   // the code before and after the cursor
	Snippets       [][]byte // other files the user has open: their names are in scope
	Language       string   // an LSP language identifier
	MaxTokens      int      // the token budget; 0 for the default (64)
	Multiline      bool     // complete a block, not only the rest of the line
}

// Complete predicts how the code continues after in.Prefix, given what
// comes after the cursor (in.Suffix). It decodes greedily, one token at a
// time, then keeps only what it is confident of: it cuts the completion
// before a token it is unsure of, a closing bracket the prefix did not
// open, or (in Go) an identifier that is not in scope, back to the end of a
// balanced expression or the end of the line; so the result is often
// empty. It hands each kept piece of text to emit; emit must not keep the
// slice. Decoding stops at the end of the line (or, when multiline, at the
// end of the block), when the next token is what the suffix starts with,
// when the model has no confident token (an identifier it cannot name,
// the end of a file, or, with Config.MinTokenProb, a token less probable
// than that), or after in.MaxTokens tokens. The same input always gives
// the same output. Complete never changes the model: what it learns about
// the request's own code (its cache) is dropped on return.
func (m *Model) Complete(ctx context.Context, in Input, emit func(text []byte) error) (Stats, error) {
	return m.complete(ctx, in, emit, completeOptions{minProb: m.minProb})
}

// predictor chooses the next token instead of the model, for the baseline
// of the evaluation.
type predictor func(g *generation, first bool) (uint32, bool)

// completeOptions change how complete predicts, for the evaluation.
type completeOptions struct {
	pred    predictor // choose tokens with this instead of the model
	noCache bool      // predict without the request's cache
	minProb float32   // stop before a token less probable than this
	greedy  bool      // keep every decoded token: the model before confidence cuts (issue 14)
	conf    *confidence
}

func (m *Model) complete(ctx context.Context, in Input, emit func(text []byte) error, opts completeOptions) (Stats, error) {
	var st Stats
	if err := ctx.Err(); err != nil {
		return st, err
	}
	maxTokens := in.MaxTokens
	if maxTokens <= 0 {
		maxTokens = defaultMaxTokens
	}
	in.Language = strings.ToLower(in.Language)
	g, ok := m.newGeneration(in, !opts.noCache)
	st.PromptTokens = g.promptTokens
	st.FinishReason = FinishStop
	if !ok {
		return st, nil
	}
	steps, out, ended := m.decode(ctx, g, maxTokens, opts)
	defer clear(out)
	if err := ctx.Err(); err != nil {
		return st, err
	}
	keep, closing := len(steps), ""
	if !opts.greedy && opts.pred == nil {
		conf := opts.conf
		if conf == nil {
			conf = &defaultConfidence
		}
		keep, closing = g.cut(steps, ended, conf)
	}

	if keep == maxTokens && !ended {
		st.FinishReason = FinishLength
	}
	for _, s := range steps[:keep] {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		st.CompletionTokens++
		if s.end > s.start {
			if err := emit(out[s.start:s.end]); err != nil {
				return st, err
			}
		}
	}
	if closing != "" {
		st.CompletionTokens++
		if err := emit([]byte(closing)); err != nil {
			return st, err
		}
	}
	return st, nil
}

// step is one decoded token: its id (a cache id with the cache), the
// confidence it was chosen with, and its piece of text out[start:end].
type step struct {
	id         uint32
	mid        uint32 // its model id (an unknown class for a word only the request has)
	p          float32
	start, end int
	line       bool // the piece starts a new line
}

// decode generates up to maxTokens tokens greedily. ended reports that the
// model itself ended the completion (the end of the line or of a block,
// the suffix taking over) rather than lacking a token it could name.
func (m *Model) decode(ctx context.Context, g *generation, maxTokens int, opts completeOptions) (steps []step, out []byte, ended bool) {
	sc := m.scratch.Get().(*scorer)
	defer m.scratch.Put(sc)
	for len(steps) < maxTokens {
		if ctx.Err() != nil {
			return steps, out, false
		}
		first := len(steps) == 0
		var id uint32
		var p float32 = 1
		var found bool
		sc.norm = first && !opts.greedy
		switch {
		case opts.pred != nil:
			id, found = opts.pred(g, first)
		case first && g.partial != "":
			id, p, found = m.predict(sc, g.hist, g.cache, g.chist, g.family, g.partial, g.partialKind, g.partialCode, g.first)
			if !found {
				id, p, found = m.predict(sc, g.hist, g.cache, g.chist, g.family, g.partial, g.partialKind, g.partialCode, g.firstLoose)
			}
		case first:
			id, p, found = m.predict(sc, g.hist, g.cache, g.chist, g.family, "", 0, 0, g.first)
			if !found && g.trail == spaceLine {
				id, p, found = m.predict(sc, g.hist, g.cache, g.chist, g.family, "", 0, 0, g.firstLoose)
			}
		default:
			id, p, found = m.predict(sc, g.hist, g.cache, g.chist, g.family, "", 0, 0, g.plausible)
		}
		sc.norm = false
		if !found || p < opts.minProb {
			return steps, out, false
		}
		start := len(out)
		lines := g.lines
		var done bool
		out, done = g.render(out, g.key(id), first)
		if done {
			return steps, out[:start], true
		}
		if g.repeats(id) {
			return steps, out[:start], false
		}
		steps = append(steps, step{id: id, mid: g.modelID(id), p: p, start: start, end: len(out), line: g.lines > lines})
		if g.endAfter {
			return steps, out, true
		}
		g.push(id)
	}
	return steps, out, false
}

// generation is the state of one completion.
type generation struct {
	m         *Model
	hist      []uint32 // context: the last tokens, as model ids
	cache     *cache   // the request's own tokens; nil without
	chist     []uint32 // context as cache ids
	gen       []uint32 // tokens generated so far
	multiline bool
	family    byte // the language's vocabulary family

	promptTokens int
	partial      string // the word the cursor is in, which the first token must extend
	partialCode  byte   // its layout, as spaceCode
	partialKind  kind   // its kind
	trail        space  // whitespace between the last token and the cursor
	typedIndent  int    // with a new line typed: the indentation change typed, or noIndent

	level     int    // indentation of the line being generated, in levels
	prevLevel int    // indentation of the line of the last token before the cursor
	unit      string // one level of indentation
	depth     int    // brackets opened minus closed by the completion
	outer     int    // braces open at the cursor, as far as the prefix read shows
	suffix    string // the first token after the cursor, "" if none
	sufLine   bool   // that token is on the cursor's line
	lines     int    // newlines generated
	endAfter  bool   // stop after the token just emitted

	// What the confidence cut needs (cut.go).
	scope      *scope   // Go: the names the completion may use; nil for other languages
	open       []byte   // brackets the prefix opened and did not close, innermost last
	inTypeBody bool     // the innermost open brace is a struct's or an interface's
	lineFunc   bool     // the cursor's line has func before the cursor
	before     []string // the texts of the last tokens before the cursor (the partial word excluded)
	beforeIDs  []uint32 // their model ids
}

// noIndent means the user typed no indentation on the cursor's new line,
// which says nothing: not every editor indents.
const noIndent = -1 << 10

// newGeneration reads the prefix and suffix. It returns false when there
// is nothing to complete: the cursor is inside a comment.
func (m *Model) newGeneration(in Input, useCache bool) (*generation, bool) {
	prefix, suffix, language := in.Prefix, in.Suffix, in.Language
	g := &generation{m: m, multiline: in.Multiline, family: family(language), typedIndent: noIndent}
	tail, atStart := prefix, true
	if len(tail) > maxPrefixBytes {
		tail = tail[len(tail)-maxPrefixBytes:]
		if i := bytes.IndexByte(tail, '\n'); i >= 0 {
			tail = tail[i+1:]
		}
		atStart = false
	}
	toks := tokenize(nil, tail, language)
	if n := len(toks); n > 0 && toks[n-1].kind == kindComment && toks[n-1].open {
		g.promptTokens = n
		return g, false
	}
	lastEnd := 0
	if n := len(toks); n > 0 {
		lastEnd = toks[n-1].end
	}
	toks = layout(toks, tail)
	g.brackets(toks)
	trail := tail[lastEnd:]
	switch {
	case bytes.IndexByte(trail, '\n') >= 0:
		g.trail = spaceLine
	case len(trail) > 0:
		g.trail = spaceOne
	}
	if n := len(toks); n > 0 && len(trail) == 0 && extendable(&toks[n-1]) {
		last := toks[n-1]
		g.partial, g.partialCode = last.text, spaceCode(last.space, last.indent)
		g.partialKind = last.kind
		toks = toks[:n-1]
	}
	g.promptTokens = len(toks)

	// The context, and the cache from every token of the prefix we read.
	if useCache {
		g.cache = newCache(m, len(toks)+maxSuffixBytes/4)
	}
	ctxLen := m.order - 1
	if atStart && len(toks) < ctxLen {
		g.hist = append(g.hist, boundary)
	}
	var key []byte
	for i := range toks {
		var id uint32
		id, key = m.lookup(g.family, &toks[i], key)
		if i >= len(toks)-ctxLen {
			g.hist = append(g.hist, id)
		}
		if i >= len(toks)-maxBefore {
			g.before = append(g.before, toks[i].text)
			g.beforeIDs = append(g.beforeIDs, id)
		}
		if g.cache != nil {
			cid := g.cache.id(id, appendKey(key[:0], g.family, &toks[i]), toks[i].kind)
			g.cache.add(cid)
			if i >= len(toks)-(cacheOrder-1) {
				g.chist = append(g.chist, cid)
			}
		}
	}

	unit := indentUnit(tail)
	g.unit = strings.Repeat(" ", unit)
	if language == "go" || bytes.Contains(tail, []byte("\n\t")) || bytes.HasPrefix(tail, []byte("\t")) {
		g.unit = "\t"
	}
	cursorLine := tail[bytes.LastIndexByte(tail, '\n')+1:]
	g.level = indentLevel(cursorLine, unit)
	g.prevLevel = g.level
	if n := len(toks); n > 0 {
		g.prevLevel = lineLevel(tail, toks[n-1].start, unit)
	}
	if g.trail == spaceLine && len(cursorLine) > 0 {
		g.typedIndent = g.level - g.prevLevel
	}

	if g.family == familyGo {
		g.scope = goScope(prefix, suffix, in.Snippets)
	}
	suffix = suffix[:min(len(suffix), maxSuffixBytes)]
	sufToks := layout(tokenize(nil, suffix, language), suffix)
	if len(sufToks) > 0 {
		g.suffix = sufToks[0].text
		g.sufLine = bytes.IndexByte(suffix[:sufToks[0].start], '\n') < 0
	}
	if g.cache != nil {
		// The code after the cursor, as a separate stretch: no n-gram spans
		// the cursor.
		g.cache.reset()
		for i := range sufToks {
			var id uint32
			id, key = m.lookup(g.family, &sufToks[i], key)
			g.cache.add(g.cache.id(id, appendKey(key[:0], g.family, &sufToks[i]), sufToks[i].kind))
		}
	}
	return g, true
}

// maxBefore is how many tokens before the cursor the cut looks at.
const maxBefore = 3

// brackets reads the brackets of the prefix's tokens: the braces open at
// the cursor, the brackets still open, innermost last, and whether the
// innermost brace is a struct's or an interface's body; and whether the
// cursor's line has func on it.
func (g *generation) brackets(toks []token) {
	var typeBody []bool
	for i, t := range toks {
		if t.space == spaceLine || t.space == spaceBlank {
			g.lineFunc = false
		}
		switch {
		case t.text == "func":
			g.lineFunc = true
		case isOpener(t.text):
			g.open = append(g.open, t.text[0])
			if t.text == "{" {
				g.outer++
				typeBody = append(typeBody, i > 0 && (toks[i-1].text == "struct" || toks[i-1].text == "interface"))
			}
		case isCloser(t.text):
			// Pop up to the matching bracket: a lenient parse of a
			// partial file.
			if j := bytes.LastIndexByte(g.open, opening(t.text[0])); j >= 0 {
				g.open = g.open[:j]
			}
			if t.text == "}" && len(typeBody) > 0 {
				g.outer = max(0, g.outer-1)
				typeBody = typeBody[:len(typeBody)-1]
			}
		}
	}
	g.inTypeBody = len(typeBody) > 0 && typeBody[len(typeBody)-1]
}

// key returns the key of a token id of this generation.
func (g *generation) key(id uint32) string {
	if g.cache != nil {
		return g.cache.key(id)
	}
	return g.m.key(id)
}

// extendable reports whether typing more characters could make t a longer
// token: a word, a number, or a literal still open.
func extendable(t *token) bool {
	switch t.kind {
	case kindIdent, kindKeyword, kindInt, kindFloat, kindImag:
		return true
	case kindString, kindChar:
		return t.open
	}
	return false
}

// plausible rejects tokens that cannot come next whatever the n-grams
// say: in Go, a declaration that only exists at the top level (func,
// import, package) starting a line inside braces.
func (g *generation) plausible(key string) bool {
	if g.family != familyGo || g.outer+g.depth <= 0 || !isWord(key) {
		return true
	}
	text, sp, _, _ := keyText(key)
	if sp != spaceLine && sp != spaceBlank {
		return true
	}
	return text != "func" && text != "import" && text != "package"
}

// first accepts the tokens that may come first, given the whitespace the
// user already typed before the cursor.
func (g *generation) first(key string) bool {
	if !isWord(key) {
		return true // a valid answer that stops generation
	}
	if !g.plausible(key) {
		return false
	}
	if g.partial != "" {
		return key[1] == g.partialCode
	}
	sp, indent := decodeSpace(key[1])
	switch g.trail {
	case spaceLine:
		return (sp == spaceLine || sp == spaceBlank) && (g.typedIndent == noIndent || int(indent) == g.typedIndent)
	case spaceOne:
		return sp == spaceOne
	}
	return true
}

// firstLoose is first, ignoring indentation.
func (g *generation) firstLoose(key string) bool {
	if !isWord(key) {
		return true
	}
	if !g.plausible(key) {
		return false
	}
	a, _ := decodeSpace(key[1])
	if g.partial != "" {
		b, _ := decodeSpace(g.partialCode)
		return a == b
	}
	return a == spaceLine || a == spaceBlank
}

// render appends the text of the token with key to dst, with its layout. It
// reports done when generation must stop before this token.
func (g *generation) render(dst []byte, key string, first bool) ([]byte, bool) {
	text, sp, indent, known := keyText(key)
	if !known {
		return dst, true
	}
	newline := sp == spaceLine || sp == spaceBlank
	typed := first && (g.partial != "" || g.trail == spaceLine) // its line break is typed already
	if newline && !typed && !g.multiline {
		return dst, true // the end of the line
	}
	onCursorLine := g.lines == 0 && (!newline || typed)
	if g.suffix != "" && text == g.suffix && onCursorLine == g.sufLine && (onCursorLine || g.depth <= 0) {
		return dst, true // the code after the cursor takes over
	}
	switch {
	case isOpener(text):
		g.depth++
	case isCloser(text):
		if g.depth == 0 && g.multiline {
			if g.suffix == text {
				return dst, true
			}
			g.endAfter = true // close the enclosing block and stop
		}
		g.depth--
		if g.depth == 0 && newline && g.multiline {
			g.endAfter = true // the end of a block the completion opened
		}
	}
	if g.multiline && sp == spaceBlank && !first && (g.depth <= 0 || g.lines >= blankStopLines) {
		return dst, true // a blank line ends a paragraph of code
	}
	if first {
		// The user typed the whitespace before the cursor already.
		if g.partial != "" {
			if !strings.HasPrefix(text, g.partial) {
				return dst, true
			}
			return append(dst, text[len(g.partial):]...), false
		}
		if g.trail == spaceOne || g.trail == spaceLine && !newline {
			return append(dst, text...), false
		}
		if g.trail == spaceLine {
			// Indent up to where the token belongs, if the user has not.
			want := max(0, g.prevLevel+int(indent))
			for range want - g.level {
				dst = append(dst, g.unit...)
			}
			g.level = max(g.level, want)
			return append(dst, text...), false
		}
	}
	switch sp {
	case spaceOne:
		dst = append(dst, ' ')
	case spaceLine, spaceBlank:
		g.lines++
		dst = append(dst, '\n')
		if sp == spaceBlank {
			dst = append(dst, '\n')
		}
		g.level = max(0, g.level+int(indent))
		for range g.level {
			dst = append(dst, g.unit...)
		}
	}
	return append(dst, text...), false
}

// repeats reports whether adding id would make the completion end with a
// short run of tokens three times over, or a long one twice.
func (g *generation) repeats(id uint32) bool {
	s := append(g.gen, id)
	for p := 1; p <= maxRepeat; p++ {
		n := 3 * p
		if p > shortRepeat {
			n = 2 * p
		}
		if n > len(s) {
			continue
		}
		tail := s[len(s)-n:]
		same := true
		for i := p; i < len(tail) && same; i++ {
			same = tail[i] == tail[i-p]
		}
		if same {
			return true
		}
	}
	return false
}

// modelID returns the model's id for a token id of this generation: a
// word only the request has stands for its unknown class, as in the corpus.
func (g *generation) modelID(id uint32) uint32 {
	if v := uint32(g.m.vocabSize()); id >= v {
		return g.cache.oov[id-v].class
	}
	return id
}

// push adds a generated token to the contexts.
func (g *generation) push(id uint32) {
	g.gen = append(g.gen, id)
	g.hist = appendLast(g.hist, g.modelID(id), g.m.order-1)
	g.chist = appendLast(g.chist, id, cacheOrder-1)
}

// appendLast appends id to s and keeps the last n ids.
func appendLast(s []uint32, id uint32, n int) []uint32 {
	s = append(s, id)
	if len(s) > n {
		s = append(s[:0], s[len(s)-n:]...)
	}
	return s
}

func isOpener(s string) bool { return s == "{" || s == "(" || s == "[" }
func isCloser(s string) bool { return s == "}" || s == ")" || s == "]" }
