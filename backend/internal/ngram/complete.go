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
	// maxPrefixBytes is how much of the prefix is tokenized: the end of it,
	// from a line start. Only the last few tokens are context, but the
	// layout needs whole lines.
	maxPrefixBytes = 4 << 10
	// defaultMaxTokens is the token budget when the caller gives none.
	defaultMaxTokens = 64
	// maxRepeat is the longest run of tokens that, repeated three times in
	// a row, stops generation: greedy n-gram decoding loops otherwise.
	maxRepeat = 8
)

// Complete predicts how the code continues after prefix, given what comes
// after the cursor (suffix) in a file of language (an LSP language
// identifier). It decodes greedily, one token at a time, and hands each
// piece of text to emit as soon as it is chosen; emit must not keep the
// slice. It stops at the end of the line (or, when multiline, at the end
// of the block), when the next token is what the suffix starts with, when
// the model has no confident token (an unknown identifier, the end of a
// file), or after maxTokens tokens (default 64). The same input always
// gives the same output. Complete never changes the model.
func (m *Model) Complete(ctx context.Context, prefix, suffix []byte, language string, maxTokens int,
	multiline bool, emit func(text []byte) error) (Stats, error) {
	return m.complete(ctx, prefix, suffix, language, maxTokens, multiline, emit, nil)
}

// predictor chooses the next token instead of the model, for the baseline
// of the evaluation.
type predictor func(g *generation, first bool) (uint32, bool)

func (m *Model) complete(ctx context.Context, prefix, suffix []byte, language string, maxTokens int,
	multiline bool, emit func(text []byte) error, pred predictor) (Stats, error) {
	var st Stats
	if err := ctx.Err(); err != nil {
		return st, err
	}
	if maxTokens <= 0 {
		maxTokens = defaultMaxTokens
	}
	language = strings.ToLower(language)
	g, ok := m.newGeneration(prefix, suffix, language, multiline)
	st.PromptTokens = g.promptTokens
	st.FinishReason = FinishStop
	if !ok {
		return st, nil
	}
	sc := m.scratch.Get().(*scorer)
	defer m.scratch.Put(sc)
	var piece []byte
	for st.CompletionTokens < maxTokens {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		var id uint32
		var found bool
		if pred == nil {
			m.prepare(sc, g.hist)
		}
		if pred != nil {
			id, found = pred(g, st.CompletionTokens == 0)
		} else if st.CompletionTokens == 0 && g.partial != "" {
			id, found = m.bestWithText(sc, g.family, g.partial, g.first)
			if !found {
				id, found = m.bestWithText(sc, g.family, g.partial, g.firstLoose)
			}
		} else if st.CompletionTokens == 0 {
			id, found = m.best(sc, g.family, g.first)
		} else {
			id, found = m.best(sc, g.family, nil)
		}
		if !found {
			return st, nil
		}
		var done bool
		piece, done = g.render(piece[:0], m.key(id), st.CompletionTokens == 0)
		if done || g.repeats(id) {
			return st, nil
		}
		st.CompletionTokens++
		if len(piece) > 0 {
			if err := emit(piece); err != nil {
				return st, err
			}
		}
		if g.endAfter {
			return st, nil
		}
		g.push(id)
	}
	st.FinishReason = FinishLength
	return st, nil
}

// generation is the state of one completion.
type generation struct {
	m         *Model
	hist      []uint32 // context: the last tokens, as ids
	gen       []uint32 // tokens generated so far
	multiline bool
	family    byte // the language's vocabulary family

	promptTokens int
	partial      string // the word the cursor is in, which the first token must extend
	partialCode  byte   // its layout, as spaceCode
	trail        space  // whitespace between the last token and the cursor

	level     int    // indentation of the line being generated, in levels
	prevLevel int    // indentation of the line of the last token before the cursor
	unit     string // one level of indentation
	depth    int    // brackets opened minus closed by the completion
	suffix   string // the first token after the cursor, "" if none
	sufLine  bool   // that token is on the cursor's line
	lines    int    // newlines generated
	endAfter bool   // stop after the token just emitted
}

// newGeneration reads the prefix and suffix. It returns false when there
// is nothing to complete: the cursor is inside a comment.
func (m *Model) newGeneration(prefix, suffix []byte, language string, multiline bool) (*generation, bool) {
	g := &generation{m: m, multiline: multiline, family: family(language)}
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
		toks = toks[:n-1]
	}
	g.promptTokens = len(toks)

	ctxLen := m.order - 1
	if atStart && len(toks) < ctxLen {
		g.hist = append(g.hist, boundary)
	}
	var key []byte
	for i := max(0, len(toks)-ctxLen); i < len(toks); i++ {
		var id uint32
		id, key = m.lookup(g.family, &toks[i], key)
		g.hist = append(g.hist, id)
	}

	unit := indentUnit(tail)
	g.unit = strings.Repeat(" ", unit)
	if language == "go" || bytes.Contains(tail, []byte("\n\t")) || bytes.HasPrefix(tail, []byte("\t")) {
		g.unit = "\t"
	}
	g.level = indentLevel(tail[bytes.LastIndexByte(tail, '\n')+1:], unit)
	g.prevLevel = g.level
	if n := len(toks); n > 0 {
		g.prevLevel = lineLevel(tail, toks[n-1].start, unit)
	}

	sufToks := layout(tokenize(nil, suffix[:min(len(suffix), 1024)], language), suffix)
	if len(sufToks) > 0 {
		g.suffix = sufToks[0].text
		g.sufLine = bytes.IndexByte(suffix[:sufToks[0].start], '\n') < 0
	}
	return g, true
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

// first accepts the tokens that may come first, given the whitespace the
// user already typed before the cursor.
func (g *generation) first(id uint32) bool {
	key := g.m.key(id)
	if !isWord(key) {
		return true // a valid answer that stops generation
	}
	if g.partial != "" {
		return key[1] == g.partialCode
	}
	sp, _ := decodeSpace(key[1])
	switch g.trail {
	case spaceLine:
		return sp == spaceLine || sp == spaceBlank
	case spaceOne:
		return sp == spaceOne
	}
	return true
}

// firstLoose is first for a partial word, ignoring its indentation.
func (g *generation) firstLoose(id uint32) bool {
	key := g.m.key(id)
	if !isWord(key) {
		return true
	}
	a, _ := decodeSpace(key[1])
	b, _ := decodeSpace(g.partialCode)
	return a == b
}

// render appends the text of the token with key to dst, with its layout. It
// reports done when generation must stop before this token.
func (g *generation) render(dst []byte, key string, first bool) ([]byte, bool) {
	text, sp, indent, known := keyText(key)
	if !known {
		return dst, true
	}
	newline := sp == spaceLine || sp == spaceBlank
	if newline && (!first || g.trail != spaceLine) && !g.multiline {
		return dst, true // the end of the line
	}
	onCursorLine := g.lines == 0 && (!newline || first && g.trail == spaceLine)
	if g.suffix != "" && text == g.suffix && onCursorLine == g.sufLine {
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
	if g.multiline && sp == spaceBlank && g.depth <= 0 && !first {
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

// repeats reports whether adding id would make the completion end with the
// same run of tokens three times over.
func (g *generation) repeats(id uint32) bool {
	s := append(g.gen, id)
	for p := 1; p <= maxRepeat && 3*p <= len(s); p++ {
		tail := s[len(s)-3*p:]
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

// push adds a generated token to the context.
func (g *generation) push(id uint32) {
	g.gen = append(g.gen, id)
	g.hist = append(g.hist, id)
	if n := g.m.order - 1; len(g.hist) > n {
		g.hist = append(g.hist[:0], g.hist[len(g.hist)-n:]...)
	}
}

func isOpener(s string) bool { return s == "{" || s == "(" || s == "[" }
func isCloser(s string) bool { return s == "}" || s == ")" || s == "]" }
