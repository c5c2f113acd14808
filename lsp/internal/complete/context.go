package complete

import (
	"cmp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/codingplan/codingplan/lsp/internal/config"
	wire "github.com/codingplan/codingplan/shared"
)

// view is the text around the cursor within the budgets, as it stands once the popup's selected
// item (if any) is accepted, and the range the suggestion replaces in the real document.
type view struct {
	prefix, suffix string
	start, end     int    // the range items replace
	lead           string // the selected item's text, which items start with
}

func newView(in Input) view {
	pb, sb := prefixBudget(in.Settings), max(0, in.Settings.SuffixChars)
	if sel := in.Selected; validSelection(sel, in) {
		return view{
			prefix: tailLines(in.Text[:sel.Start], max(0, pb-len(sel.Text))) + sel.Text,
			suffix: headLines(in.Text[sel.End:], sb),
			start:  sel.Start,
			end:    sel.End,
			lead:   sel.Text,
		}
	}
	return view{
		prefix: tailLines(in.Text[:in.Offset], pb),
		suffix: headLines(in.Text[in.Offset:], sb),
		start:  in.Offset,
		end:    in.Offset,
	}
}

// validSelection reports whether the selected item replaces a range around the cursor.
func validSelection(sel *Selected, in Input) bool {
	return sel != nil && 0 <= sel.Start && sel.Start <= in.Offset && in.Offset <= sel.End && sel.End <= len(in.Text)
}

func prefixBudget(s config.Settings) int {
	if s.PrefixChars <= 0 {
		return config.Default().PrefixChars
	}
	return s.PrefixChars
}

// tailLines returns the end of s within budget bytes, starting at a line's start; when the last
// line alone is longer, it starts at a character boundary instead.
func tailLines(s string, budget int) string {
	if len(s) <= budget {
		return s
	}
	start := len(s) - budget
	if start > 0 && s[start-1] == '\n' {
		return s[start:]
	}
	if i := strings.IndexByte(s[start:], '\n'); i >= 0 && start+i+1 < len(s) {
		return s[start+i+1:]
	}
	for start < len(s) && !utf8.RuneStart(s[start]) {
		start++
	}
	return s[start:]
}

// headLines returns the start of s within budget bytes, ending after a line break; when the
// first line alone is longer, it ends at a character boundary instead.
func headLines(s string, budget int) string {
	if len(s) <= budget {
		return s
	}
	if i := strings.LastIndexByte(s[:budget], '\n'); i >= 0 {
		return s[:i+1]
	}
	end := budget
	for end > 0 && !utf8.RuneStart(s[end]) {
		end--
	}
	return s[:end]
}

// request builds the frame for the backend, masking secrets in everything it sends.
func (e *Engine) request(in Input, v view, sit situation) wire.ClientFrame {
	var stop []wire.Text
	if !sit.multiline {
		stop = []wire.Text{"\n"}
	}
	maxTokens := min(max(in.Settings.MaxTokens, 0), wire.MaxTokensLimit)
	return wire.ClientFrame{
		Type:      wire.TypeRequest,
		Op:        wire.OpCompletion,
		Model:     in.Settings.Model,
		MaxTokens: maxTokens,
		Stop:      stop,
		Completion: &wire.Completion{
			Prefix:    wire.Text(Mask(v.prefix)),
			Suffix:    wire.Text(Mask(v.suffix)),
			Language:  in.Language,
			Path:      in.RelPath,
			Snippets:  e.snippets(in, v.prefix),
			Multiline: sit.multiline,
		},
	}
}

// Snippet windows: lines per window and the step between windows.
const (
	windowLines = 24
	windowStep  = 12
	scanBytes   = 64 << 10 // of each other document
	tailBytes   = 1500     // of the prefix, for identifiers
)

type window struct {
	doc        int
	start, end int
	score      int
}

// identSet holds the identifiers near the cursor. A filter on first byte and length rejects
// most other identifiers without a map lookup.
type identSet struct {
	index  map[string]int
	filter [256]uint64
}

func (s *identSet) add(id string) {
	if _, ok := s.index[id]; !ok {
		s.index[id] = len(s.index)
	}
	s.filter[id[0]] |= 1 << (len(id) & 63)
}

func (s *identSet) lookup(id string) (int, bool) {
	if s.filter[id[0]]&(1<<(len(id)&63)) == 0 {
		return 0, false
	}
	i, ok := s.index[id]
	return i, ok
}

// hit is an identifier of the set found on a line of another document.
type hit struct{ line, id int }

// snippets picks excerpts of other open documents that share the most identifiers with the
// code just before the cursor, within SnippetChars.
func (e *Engine) snippets(in Input, prefix string) []wire.Snippet {
	budget := in.Settings.SnippetChars
	if budget <= 0 || len(in.Others) == 0 {
		return nil
	}
	want := identSet{index: map[string]int{}}
	eachIdent(prefix[max(0, len(prefix)-tailBytes):], want.add)
	if len(want.index) == 0 {
		return nil
	}
	var wins []window
	var hits []hit
	var lines []int
	stamp := make([]int, len(want.index))
	mark := 0
	docs := 0
	for i, o := range in.Others {
		if docs == e.cfg.MaxOthers {
			break
		}
		if o.RelPath == in.RelPath || o.Text == "" || Ignored(in.Settings.Ignore, o.RelPath) {
			continue
		}
		docs++
		text := headLines(o.Text, scanBytes)
		lines, hits = scanLines(text, &want, lines[:0], hits[:0])
		h := 0 // first hit at or after window w
		for w := 0; w < len(lines); w += windowStep {
			for h < len(hits) && hits[h].line < w {
				h++
			}
			last := min(w+windowLines, len(lines))
			mark++
			score := 0
			for j := h; j < len(hits) && hits[j].line < last; j++ {
				if stamp[hits[j].id] != mark {
					stamp[hits[j].id] = mark
					score++
				}
			}
			end := len(text)
			if last < len(lines) {
				end = lines[last]
			}
			if score > 0 {
				wins = append(wins, window{doc: i, start: lines[w], end: end, score: score})
			}
			if end == len(text) {
				break
			}
		}
	}
	slices.SortStableFunc(wins, func(a, b window) int { return cmp.Compare(b.score, a.score) })
	var out []wire.Snippet
	var taken []window
	for _, w := range wins {
		if budget <= 0 {
			break
		}
		if slices.ContainsFunc(taken, func(t window) bool { return t.doc == w.doc && t.start < w.end && w.start < t.end }) {
			continue
		}
		text := strings.TrimRight(headLines(in.Others[w.doc].Text[w.start:w.end], budget), " \t\r\n")
		if text == "" {
			continue
		}
		text += "\n"
		budget -= len(text)
		taken = append(taken, w)
		out = append(out, wire.Snippet{Path: in.Others[w.doc].RelPath, Text: wire.Text(Mask(text))})
	}
	return out
}

// scanLines returns the start of each line of text and, in order, the identifiers of want
// found on each line.
func scanLines(text string, want *identSet, lines []int, hits []hit) ([]int, []hit) {
	lines = append(lines, 0)
	for i := 0; i < len(text); {
		c := text[i]
		if c == '\n' {
			i++
			if i < len(text) {
				lines = append(lines, i)
			}
			continue
		}
		if !isIdentStart(c) {
			i++
			continue
		}
		j := i + 1
		for j < len(text) && (isIdentStart(text[j]) || '0' <= text[j] && text[j] <= '9') {
			j++
		}
		if j-i >= 3 {
			if id, ok := want.lookup(text[i:j]); ok {
				hits = append(hits, hit{line: len(lines) - 1, id: id})
			}
		}
		i = j
	}
	return lines, hits
}

// eachIdent calls f with each identifier of three or more characters that is not a common
// keyword.
func eachIdent(s string, f func(string)) {
	for i := 0; i < len(s); {
		c := s[i]
		if !isIdentStart(c) {
			i++
			continue
		}
		j := i + 1
		for j < len(s) && (isIdentStart(s[j]) || '0' <= s[j] && s[j] <= '9') {
			j++
		}
		if id := s[i:j]; len(id) >= 3 && !keywords[id] {
			f(id)
		}
		i = j
	}
}

func isIdentStart(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_'
}

var keywords = map[string]bool{}

func init() {
	for _, k := range strings.Fields(`and break case catch class const continue def default defer del
		elif else end enum except export extends false final finally for from func function go if
		import interface let lambda new nil none not null package pass private protected public
		raise return self static struct super switch this throw true try type var void while with
		yield async await int string bool float the`) {
		keywords[k] = true
	}
}
