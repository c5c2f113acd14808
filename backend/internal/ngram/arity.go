package ngram

import (
	"slices"
	"strings"
)

// arities are the argument counts of package-level function calls seen in
// the Go training files: for each "pkg.Func", a mask of the counts seen
// (bit n: n arguments; bit 31: 31 or more). A completion that calls a
// function of an imported package with a count the corpus never used is
// cut (cut.go): context.WithCancel takes one argument, never two. It is
// part of the model and its file, built from the corpus only.
type arities struct {
	keys  string   // every "pkg.Func", sorted, concatenated
	off   []uint32 // key i is keys[off[i]:off[i+1]]
	masks []uint32
}

// maxArgBit is the mask bit for a call of that many arguments or more.
const maxArgBit = 31

// countCalls adds the calls of a Go file's tokens whose receiver is a
// package the file imports to counts.
func countCalls(toks []token, src []byte, counts map[string]uint32) {
	s := &scope{imports: map[string]bool{}, top: map[string]bool{}}
	s.declarations(src[:min(len(src), 64<<10)], true)
	for i := 3; i < len(toks); i++ {
		if toks[i].text != "(" || toks[i-2].text != "." || toks[i-1].kind != kindIdent ||
			toks[i-3].kind != kindIdent || !s.imports[toks[i-3].text] || i >= 4 && toks[i-4].text == "." {
			continue
		}
		n, ok := countArgs(toks[i+1:])
		if !ok {
			continue
		}
		key := toks[i-3].text + "." + toks[i-1].text
		counts[key] |= 1 << min(n, maxArgBit)
	}
}

// maxCallTokens bounds how far countArgs looks for a call's end.
const maxCallTokens = 512

// countArgs counts the arguments of a call whose tokens after the opening
// parenthesis are toks, up to its closing one.
func countArgs(toks []token) (int, bool) {
	depth, n := 0, 0
	for i, t := range toks {
		switch {
		case isOpener(t.text):
			depth++
		case isCloser(t.text) && depth > 0:
			depth--
		case t.text == ")":
			if i > 0 && toks[i-1].text != "," { // a trailing comma adds no argument
				n++
			}
			return n, true
		case t.text == "," && depth == 0:
			n++
		}
		if i >= maxCallTokens {
			break
		}
	}
	return 0, false
}

// newArities builds the table from counts.
func newArities(counts map[string]uint32) arities {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var a arities
	var sb strings.Builder
	a.off = append(a.off, 0)
	for _, k := range keys {
		sb.WriteString(k)
		a.off = append(a.off, uint32(sb.Len()))
		a.masks = append(a.masks, counts[k])
	}
	a.keys = sb.String()
	return a
}

// mask returns the argument counts seen for pkg.name, or 0 when the corpus
// never called it.
func (a *arities) mask(pkg, name string) uint32 {
	key := pkg + "." + name
	n := len(a.masks)
	lo, hi := 0, n
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if strings.Compare(a.keys[a.off[mid]:a.off[mid+1]], key) < 0 {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < n && a.keys[a.off[lo]:a.off[lo+1]] == key {
		return a.masks[lo]
	}
	return 0
}

// allows reports whether a call with n arguments fits mask; a zero mask
// allows all. atLeast asks whether any count of n or more was seen.
func allows(mask uint32, n int, atLeast bool) bool {
	if mask == 0 {
		return true
	}
	n = min(n, maxArgBit)
	if atLeast {
		return mask>>n != 0
	}
	return mask&(1<<n) != 0
}

// valid reports whether the table is well formed.
func (a *arities) valid() bool {
	if len(a.off) != len(a.masks)+1 || a.off[0] != 0 || int(a.off[len(a.off)-1]) != len(a.keys) {
		return false
	}
	for i := 1; i < len(a.off); i++ {
		if a.off[i] < a.off[i-1] {
			return false
		}
	}
	return true
}
