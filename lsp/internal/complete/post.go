package complete

import (
	"strings"
	"unicode/utf8"
)

// situation is what post-processing needs to know about the cursor.
type situation struct {
	linePrefix string // the cursor's line before the cursor
	rest       string // the cursor's line after the cursor, without the line break
	after      string // the text after the cursor, within the suffix budget
	nextLine   string // the first non-blank line below the cursor's line, right-trimmed
	indent     int    // width of the cursor line's indentation
	opens      bool   // the cursor's line, up to the cursor, opens a block
	multiline  bool
	crlf       bool
}

// situate describes the cursor between prefix and suffix. mode is Settings.Multiline:
// "always", "never", or anything else for auto.
func situate(prefix, suffix, mode string) situation {
	s := situation{after: suffix}
	if i := strings.LastIndexByte(prefix, '\n'); i >= 0 {
		s.linePrefix = prefix[i+1:]
		s.crlf = i > 0 && prefix[i-1] == '\r'
	} else {
		s.linePrefix = prefix
	}
	s.rest = suffix
	if i := strings.IndexByte(suffix, '\n'); i >= 0 {
		s.rest = suffix[:i]
		s.crlf = s.crlf || strings.HasSuffix(s.rest, "\r")
		for line := range strings.SplitSeq(suffix[i+1:], "\n") {
			if line = strings.TrimRight(line, " \t\r"); line != "" {
				s.nextLine = line
				break
			}
		}
	}
	s.rest = strings.TrimRight(s.rest, "\r")
	s.indent = width(leadingSpace(s.linePrefix))
	s.opens = opensBlock(s.linePrefix)
	switch mode {
	case "always":
		s.multiline = true
	case "never":
	default:
		// Mid-line: finish the line. At the end of a line that opens a block, or on a blank
		// line: write the block. At the end of any other line: finish the statement.
		s.multiline = strings.TrimSpace(s.rest) == "" && (s.opens || strings.TrimSpace(s.linePrefix) == "")
	}
	return s
}

func leadingSpace(s string) string {
	return s[:len(s)-len(strings.TrimLeft(s, " \t"))]
}

// width is the display width of indentation, a tab counting four.
func width(indent string) int {
	w := 0
	for _, c := range indent {
		if c == '\t' {
			w += 4
		} else {
			w++
		}
	}
	return w
}

func opensBlock(line string) bool {
	t := strings.TrimRight(line, " \t\r")
	if t == "" {
		return false
	}
	switch t[len(t)-1] {
	case '{', '(', '[', ':':
		return true
	}
	for _, end := range []string{"=>", "->", " do", " then", "else", "begin"} {
		if strings.HasSuffix(t, end) {
			return true
		}
	}
	return false
}

func closesBlock(trimmed string) bool {
	if trimmed == "" {
		return false
	}
	switch trimmed[0] {
	case '}', ')', ']':
		return true
	}
	for _, w := range []string{"end", "fi", "done", "esac"} {
		if rest, ok := strings.CutPrefix(trimmed, w); ok && (rest == "" || !isIdentStart(rest[0])) {
			return true
		}
	}
	return false
}

// postprocess fits a raw suggestion to the text around the cursor. It returns "" when nothing
// worth showing is left.
func postprocess(raw string, sit situation) string {
	s := strings.ReplaceAll(raw, "\r", "")
	s = strings.ToValidUTF8(s, "")
	if sit.multiline {
		end, _ := blockEnd(s, sit)
		s = cutAtLine(s[:end], sit.nextLine)
	} else if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	s = cutSurplusClosers(s, sit.after)
	s = stripOverlap(s, sit.rest)
	s = closeOpened(s, sit)
	if sit.multiline || strings.TrimSpace(sit.rest) == "" {
		s = strings.TrimRight(s, " \t\n")
	}
	if sit.multiline {
		s = strings.TrimRight(cutAtLine(s, sit.nextLine), " \t\n")
	}
	if strings.TrimSpace(s) == "" {
		return ""
	}
	if sit.crlf {
		s = strings.ReplaceAll(s, "\n", "\r\n")
	}
	return s
}

// complete reports whether the streamed text so far already holds the whole suggestion, so the
// stream can stop: a line break in single-line mode; a complete line that ends the block or
// repeats the line below the cursor in multi-line mode.
func (sit situation) complete(buf []byte) bool {
	if !sit.multiline {
		return true // called only once buf holds a line break
	}
	s := string(buf[:strings.LastIndexByte(string(buf), '\n')+1])
	s = strings.ReplaceAll(s, "\r", "")
	s = strings.TrimSuffix(s, "\n")
	_, ended := blockEnd(s, sit)
	return ended || cutAtLine(s, sit.nextLine) != s
}

// blockEnd returns where the block the cursor is in ends within s, by indentation: lines after
// the first belong to it while they are indented deeper than the cursor's line (when that line
// opens a block; its closing line is kept) or at least as deep (otherwise). At the top level,
// a blank line after a complete statement ends the suggestion. ended reports that s holds the
// end of the block, so nothing after it would be kept.
func blockEnd(s string, sit situation) (cut int, ended bool) {
	first := strings.IndexByte(s, '\n')
	if first < 0 {
		return len(s), false
	}
	depth := bracketDepth(s[:first])
	content := strings.TrimSpace(sit.linePrefix+s[:first]) != "" && !sit.opens
	for p := first + 1; p <= len(s); {
		end := strings.IndexByte(s[p:], '\n')
		if end < 0 {
			end = len(s)
		} else {
			end += p
		}
		line := s[p:end]
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "":
			if sit.indent == 0 && !sit.opens && content && depth <= 0 {
				return p - 1, true
			}
		case sit.opens:
			w := width(leadingSpace(line))
			if w <= sit.indent {
				if w == sit.indent && closesBlock(trimmed) {
					return end, true
				}
				return p - 1, true
			}
		default:
			if width(leadingSpace(line)) < sit.indent {
				return p - 1, true
			}
		}
		if trimmed != "" {
			content = true
		}
		depth += bracketDepth(line)
		if end == len(s) {
			break
		}
		p = end + 1
	}
	return len(s), false
}

func bracketDepth(line string) int {
	d := 0
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '(', '[', '{':
			d++
		case ')', ']', '}':
			d--
		}
	}
	return d
}

// cutAtLine cuts s before its first line (after the first) that equals next, the line below
// the cursor: the suggestion has reached text that already stands there.
func cutAtLine(s, next string) string {
	if next == "" {
		return s
	}
	for p := strings.IndexByte(s, '\n'); p >= 0; {
		start := p + 1
		end := strings.IndexByte(s[start:], '\n')
		if end < 0 {
			end = len(s)
		} else {
			end += start
		}
		if strings.TrimRight(s[start:end], " \t") == next {
			return s[:p]
		}
		if end == len(s) {
			break
		}
		p = end
	}
	return s
}

// opener is a bracket the suggestion opened and did not close.
type opener struct {
	pos int
	c   byte
}

var closerOf = map[byte]byte{'(': ')', '[': ']', '{': '}'}

// scanBrackets walks s, skipping strings and line comments. It returns the brackets s opened
// and left open, the position of the first closer that closes something before the cursor
// (-1 if none), and whether the brackets mismatch.
func scanBrackets(s string, firstOrphan bool) (open []opener, orphan int, bad bool) {
	orphan = -1
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if quote != 0 {
			switch {
			case c == '\\':
				i++
			case c == quote:
				quote = 0
			case c == '\n' && quote != '`':
				quote = 0
			}
			continue
		}
		switch c {
		case '"', '\'', '`':
			quote = c
		case '/':
			if i+1 < len(s) && s[i+1] == '/' {
				for i < len(s) && s[i] != '\n' {
					i++
				}
			}
		case '(', '[', '{':
			open = append(open, opener{pos: i, c: c})
		case ')', ']', '}':
			if len(open) == 0 {
				if orphan < 0 {
					orphan = i
					if firstOrphan {
						return open, orphan, bad
					}
				}
				continue
			}
			if closerOf[open[len(open)-1].c] != c {
				bad = true
			}
			open = open[:len(open)-1]
		}
	}
	return open, orphan, bad
}

// cutSurplusClosers cuts s before a closer that closes a bracket opened before the cursor when
// the text after the cursor starts with that same closer: it is already there.
func cutSurplusClosers(s, after string) string {
	next := strings.TrimLeft(after, " \t\r\n")
	if next == "" {
		return s
	}
	_, orphan, _ := scanBrackets(s, true)
	if orphan >= 0 && s[orphan] == next[0] {
		return s[:orphan]
	}
	return s
}

// stripOverlap removes the end of s that repeats the start of the rest of the line, when what
// repeats is the whole rest or punctuation (closers, quotes, semicolons).
func stripOverlap(s, rest string) string {
	r := strings.TrimRight(rest, " \t")
	for k := min(len(s), len(r)); k >= 1; k-- {
		if k < len(r) && !utf8.RuneStart(r[k]) {
			continue
		}
		if strings.HasSuffix(s, r[:k]) && utf8.RuneStart(s[len(s)-k]) && (k == len(r) || punctuation(r[:k])) {
			return s[:len(s)-k]
		}
	}
	return s
}

func punctuation(s string) bool {
	seen := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ' ' || c == '\t':
		case strings.IndexByte(")]}>\"'`;,.:", c) >= 0:
			seen = true
		default:
			return false
		}
	}
	return seen
}

// closeOpened closes the brackets s opened and left open with something after them, innermost
// first; a bracket at the very end opens what the user goes on to write.
func closeOpened(s string, sit situation) string {
	open, _, bad := scanBrackets(s, false)
	if bad || len(open) == 0 {
		return s
	}
	t := strings.TrimRight(s, " \t\n")
	if open[len(open)-1].pos == len(t)-1 {
		return s // the suggestion ends by opening a block: leave it open
	}
	var b strings.Builder
	b.WriteString(t)
	for i := len(open) - 1; i >= 0; i-- {
		o := open[i]
		if strings.IndexByte(t[o.pos:], '\n') < 0 {
			b.WriteByte(closerOf[o.c])
			continue
		}
		lineStart := strings.LastIndexByte(t[:o.pos], '\n') + 1
		indent := leadingSpace(t[lineStart:o.pos])
		if lineStart == 0 {
			indent = leadingSpace(sit.linePrefix + t[:o.pos])
		}
		b.WriteByte('\n')
		b.WriteString(indent)
		b.WriteByte(closerOf[o.c])
	}
	return b.String()
}
