package ngram

import "bytes"

// space is the layout class of the whitespace before a token. The model
// predicts it together with the token's text; exact runs of spaces (gofmt's
// alignment) are not kept.
type space uint8

const (
	spaceNone  space = iota // glued to the previous token
	spaceOne                // spaces or tabs on the same line
	spaceLine               // a new line
	spaceBlank              // a new line after one or more blank lines
)

// maxIndent bounds the indentation change a token can carry, in levels.
const maxIndent = 4

// kind is what a token is, as far as the model cares.
type kind uint8

const (
	kindOther kind = iota
	kindIdent
	kindKeyword
	kindInt
	kindFloat
	kindImag
	kindChar
	kindString
	kindOp
	kindComment
	numKinds
)

var kindNames = [numKinds]string{"other", "ident", "keyword", "int", "float", "imag", "char", "string", "op", "comment"}

func (k kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return "kind?"
}

// token is one lexical token of a source file. start and end are byte
// offsets into the source; text is the token's source text. space and
// indent are filled by layout.
type token struct {
	text       string
	kind       kind
	space      space
	indent     int8 // change of indentation level, for spaceLine and spaceBlank
	start, end int
	open       bool // a literal or comment that runs to the end of input unterminated
}

// spaceCode packs a layout class and indentation change into the first byte
// of a vocabulary key: 0 none, 1 one, 2..10 line, 11..19 blank line.
func spaceCode(s space, indent int8) byte {
	indent = max(-maxIndent, min(maxIndent, indent))
	switch s {
	case spaceNone:
		return 0
	case spaceOne:
		return 1
	case spaceLine:
		return byte(2 + int(indent) + maxIndent)
	default:
		return byte(3 + 3*maxIndent + int(indent))
	}
}

// unkCode is the second byte of the key of an unknown-token class.
const unkCode = 0xff

// decodeSpace reverses spaceCode.
func decodeSpace(c byte) (space, int8) {
	switch {
	case c == 0:
		return spaceNone, 0
	case c == 1:
		return spaceOne, 0
	case c <= 2+2*maxIndent:
		return spaceLine, int8(int(c) - 2 - maxIndent)
	default:
		return spaceBlank, int8(int(c) - 3 - 3*maxIndent)
	}
}

// A vocabulary key is a token's language family, its layout (spaceCode)
// and its text. Keys of different families never meet in an n-gram, so
// the languages of the corpus do not leak into each other. The key of an
// unknown-token class is its family, unkCode, the kind and the layout. The
// boundary between documents has the empty key.

// appendKey appends the vocabulary key of t in family fam to dst.
func appendKey(dst []byte, fam byte, t *token) []byte {
	dst = append(dst, fam, spaceCode(t.space, t.indent))
	return append(dst, t.text...)
}

// appendUnkKey appends the key of the unknown-token class that t falls in.
func appendUnkKey(dst []byte, fam byte, t *token) []byte {
	return append(dst, fam, unkCode, byte(t.kind), spaceCode(t.space, t.indent))
}

// unkKeyOf returns the key of the unknown-token class of a known key.
func unkKeyOf(key string, k kind) string {
	return string([]byte{key[0], unkCode, byte(k), key[1]})
}

// isWord reports whether key is a token with text: not the boundary, not
// an unknown-token class.
func isWord(key string) bool { return len(key) >= 2 && key[1] != unkCode }

// keyText returns the text and layout of a vocabulary key; unknown classes
// and boundary have no text.
func keyText(key string) (text string, sp space, indent int8, known bool) {
	if !isWord(key) {
		return "", spaceNone, 0, false
	}
	sp, indent = decodeSpace(key[1])
	return key[2:], sp, indent, true
}

// layout fills space and indent of the code tokens (comments are skipped,
// and the tokens after a comment get the layout of the gap around it). It
// returns toks with comments removed, reusing its storage.
func layout(toks []token, src []byte) []token {
	unit := indentUnit(src)
	out := toks[:0]
	level := 0
	prevEnd := -1
	for _, t := range toks {
		if t.kind == kindComment {
			continue
		}
		if prevEnd < 0 {
			t.space = spaceNone
			level = lineLevel(src, t.start, unit)
		} else {
			gap := src[prevEnd:t.start]
			switch {
			case bytes.IndexByte(gap, '\n') < 0:
				t.space = spaceOne
				if len(gap) == 0 {
					t.space = spaceNone
				}
			default:
				t.space = spaceLine
				if hasBlankLine(gap) {
					t.space = spaceBlank
				}
				l := lineLevel(src, t.start, unit)
				t.indent = int8(max(-maxIndent, min(maxIndent, l-level)))
				level = l
			}
		}
		prevEnd = t.end
		out = append(out, t)
	}
	return out
}

// hasBlankLine reports whether gap holds a line of only whitespace between
// two newlines.
func hasBlankLine(gap []byte) bool {
	i := bytes.IndexByte(gap, '\n')
	for i >= 0 {
		rest := gap[i+1:]
		j := 0
		for j < len(rest) && isHSpace(rest[j]) {
			j++
		}
		if j < len(rest) && rest[j] == '\n' {
			return true
		}
		k := bytes.IndexByte(rest, '\n')
		if k < 0 {
			return false
		}
		i += 1 + k
	}
	return false
}

func isHSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v' }

// lineLevel is the indentation level of the line holding offset off.
func lineLevel(src []byte, off, unit int) int {
	ls := bytes.LastIndexByte(src[:off], '\n') + 1
	return indentLevel(src[ls:], unit)
}

// indentLevel measures the leading whitespace of line in levels: a tab is
// one level, unit spaces are one level.
func indentLevel(line []byte, unit int) int {
	tabs, spaces := 0, 0
	for _, c := range line {
		switch c {
		case '\t':
			tabs++
		case ' ':
			spaces++
		default:
			return tabs + spaces/unit
		}
	}
	return tabs + spaces/unit
}

// indentUnit guesses how many spaces make one indentation level in src: the
// most common increase of space indentation from one non-blank line to the
// next, among 2, 3, 4 and 8; 4 when there is none.
func indentUnit(src []byte) int {
	var votes [9]int
	prev := 0
	for len(src) > 0 {
		var line []byte
		line, src, _ = bytes.Cut(src, []byte("\n"))
		n := 0
		for n < len(line) && line[n] == ' ' {
			n++
		}
		if n == len(line) || line[n] == '\t' || line[n] == '\r' {
			continue
		}
		if d := n - prev; d == 2 || d == 3 || d == 4 || d == 8 {
			votes[d]++
		}
		prev = n
	}
	best := 4
	for _, d := range []int{2, 3, 8} {
		if votes[d] > votes[best] {
			best = d
		}
	}
	return best
}
