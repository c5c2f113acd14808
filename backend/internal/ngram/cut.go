package ngram

import (
	gotoken "go/token"
	"unicode"
	"unicode/utf8"
)

// confidence says how sure the model must be of a completion to show it.
// Decoding is greedy; the completion is then cut before the first token
// that is less probable than these bounds, or that breaks a rule (a
// closing bracket nothing opened, an identifier out of scope), and back to
// the last point where it may stop: the end of a balanced expression, of
// the word being typed, or of the line. Showing nothing beats showing something wrong: a wrong ghost
// text costs the user more than none.
type confidence struct {
	first float32 // the first token's probability, among the tokens that may come first
	each  float32 // every later token's probability
	all   float32 // the product of the probabilities of the tokens kept
	// untrained is each and first for a language the model has no
	// training text for, where only the request's own code predicts.
	untrained float32
}

// defaultConfidence was set by hand and checked on a sample of the
// held-out GOROOT files (see docs/benchmarks.md#local-model); the code
// measured outside GOROOT took no part in choosing it.
var defaultConfidence = confidence{first: 0.3, each: 0.3, all: 0.15, untrained: 0.45}

// cut returns how many of the decoded steps to show, and a closing
// parenthesis to add after them when the model went on with an argument
// that the call cannot take. ended reports that the model ended the
// completion itself, so that its end is a place to stop.
func (g *generation) cut(steps []step, ended bool, conf *confidence) (keep int, closing string) {
	first, each := conf.first, conf.each
	if !g.m.trained(g.family) {
		first, each = max(first, conf.untrained), max(each, conf.untrained)
	}
	stack := append([]byte(nil), g.open...) // brackets open: the prefix's, then the completion's
	base := len(stack)                      // how many of them the prefix opened and the completion has not closed
	var calls []call                        // the brackets the completion opened, innermost last
	good := 0
	all := float32(1)
	for i, s := range steps {
		text := g.text(s.id)
		floor := each
		if i == 0 {
			floor = first
		}
		all *= s.p
		if s.p < floor || all < conf.all {
			return good, ""
		}
		if s.line && i > 0 {
			good = i // the end of a line
		}
		switch {
		case isOpener(text):
			stack = append(stack, text[0])
			calls = append(calls, g.call(steps, i))
		case isCloser(text):
			if len(stack) == 0 || stack[len(stack)-1] != opening(text[0]) {
				return good, "" // a bracket nothing opened
			}
			stack = stack[:len(stack)-1]
			base = min(base, len(stack))
			if n := len(calls); n > 0 {
				if !calls[n-1].closes(i, g.textAt(steps, i-1)) {
					return good, "" // more or fewer arguments than any call in the corpus
				}
				calls = calls[:n-1]
			}
		case text == "," && len(calls) > 0:
			c := calls[len(calls)-1]
			if !calls[len(calls)-1].comma() {
				// The call takes no more arguments: end it here when it
				// may end and that balances the completion.
				if c.closes(i, g.textAt(steps, i-1)) && len(stack)-1 <= base && stack[len(stack)-1] == '(' {
					return i, ")"
				}
				return good, ""
			}
		}
		if g.family == familyGo && g.scope != nil && !g.inScope(steps, i, text) {
			return good, ""
		}
		if len(stack) <= base && (endsOperand(text) || i == 0 && g.partial != "") {
			good = i + 1 // the end of a balanced expression
		}
	}
	if ended {
		return len(steps), ""
	}
	return good, ""
}

// opening returns the opening bracket of a closing one.
func opening(c byte) byte {
	switch c {
	case ')':
		return '('
	case ']':
		return '['
	}
	return '{'
}

// endsOperand reports whether a token can end an expression or a
// statement: a name, a literal, a closing bracket, ++ or --.
func endsOperand(text string) bool {
	if text == "" {
		return false
	}
	switch text {
	case "++", "--", "break", "continue", "fallthrough":
		return true
	}
	if isCloser(text) {
		return true
	}
	r, _ := utf8.DecodeRuneInString(text)
	if r == '_' || unicode.IsLetter(r) {
		return !gotoken.Lookup(text).IsKeyword()
	}
	return unicode.IsDigit(r) || r == '"' || r == '\'' || r == '`' || r == '.' && len(text) > 1
}

// text returns the text of a token id of this generation.
func (g *generation) text(id uint32) string {
	t, _, _, _ := keyText(g.key(id))
	return t
}

// textAt returns the text of token j of the prompt and the completion: j
// >= 0 is steps[j], j < 0 the prefix's tokens before the cursor from the
// last (-1) back.
func (g *generation) textAt(steps []step, j int) string {
	switch {
	case j >= 0:
		return g.text(steps[j].id)
	case -j <= len(g.before):
		return g.before[len(g.before)+j]
	}
	return ""
}

// inScope reports whether token i of the completion, text, may be shown as
// far as scope goes: anything but an identifier; a keyword or predeclared
// name; an identifier in scope or declared right here; after a package's
// name and a dot, a name the model saw after it in training or the prompt
// writes after it; after any other name and a dot, any field or method.
func (g *generation) inScope(steps []step, i int, text string) bool {
	r, _ := utf8.DecodeRuneInString(text)
	if r != '_' && !unicode.IsLetter(r) || gotoken.Lookup(text).IsKeyword() {
		return true
	}
	if g.textAt(steps, i-1) == "." {
		base := g.textAt(steps, i-2)
		if !g.scope.imports[base] || g.scope.local[base] {
			return true // a field or method: the model cannot check those
		}
		return g.knownAfter(steps, i) || g.scope.written(base, text)
	}
	if g.scope.has(text) || g.inTypeBody {
		return true
	}
	// Declared here: a name before := (or in a list before it), a key or
	// label before :, a name after var, const, type or func, or anything
	// in a function's signature on this line.
	switch g.textAt(steps, i-1) {
	case "var", "const", "type", "func":
		return true
	}
	if g.lineFunc {
		return true
	}
	for j := 0; j <= i; j++ {
		if g.textAt(steps, j) == "func" {
			return true
		}
	}
	for j := i + 1; j < len(steps); j += 2 {
		t := g.textAt(steps, j)
		if t == ":=" || t == ":" {
			return true
		}
		if t != "," {
			break
		}
	}
	return false
}

// knownAfter reports whether the model saw steps[i] after the two tokens
// before it (a package name and a dot) in training.
func (g *generation) knownAfter(steps []step, i int) bool {
	ctx := [2]uint32{g.midAt(steps, i-2), g.midAt(steps, i-1)}
	var nodes [2]int
	if ctx[0] == unknownID || g.m.contexts(ctx[:], nodes[:]) < 2 {
		return false
	}
	return g.m.findChild(1, nodes[1], steps[i].mid) >= 0
}

// midAt is textAt for model ids.
func (g *generation) midAt(steps []step, j int) uint32 {
	switch {
	case j >= 0:
		return steps[j].mid
	case -j <= len(g.beforeIDs):
		return g.beforeIDs[len(g.beforeIDs)+j]
	}
	return unknownID
}

// trained reports whether the model has training text in family fam.
func (m *Model) trained(fam byte) bool { return len(m.topByFamily[fam]) > 0 }

// call is a bracket the completion opened: for a call of an imported
// package's function, the argument counts the corpus used and the commas
// so far.
type call struct {
	mask   uint32 // 0: no check
	start  int    // the step of the opening bracket
	commas int
}

// call returns the call that steps[i], an opening bracket, starts.
func (g *generation) call(steps []step, i int) call {
	c := call{start: i}
	if g.scope == nil || g.textAt(steps, i) != "(" || g.textAt(steps, i-2) != "." {
		return c
	}
	pkg, name := g.textAt(steps, i-3), g.textAt(steps, i-1)
	if g.scope.imports[pkg] && !g.scope.local[pkg] && g.textAt(steps, i-4) != "." {
		c.mask = g.m.arity.mask(pkg, name)
	}
	return c
}

// comma reports whether the call may take another argument.
func (c *call) comma() bool {
	c.commas++
	return allows(c.mask, c.commas+1, true)
}

// closes reports whether the call may end at step i, after a token with
// text prev.
func (c *call) closes(i int, prev string) bool {
	n := c.commas + 1
	if i == c.start+1 {
		n = 0
	} else if prev == "," {
		n = c.commas
	}
	return allows(c.mask, n, false)
}
