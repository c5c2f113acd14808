package ngram

import (
	"go/scanner"
	gotoken "go/token"
)

// tokenizeGo appends the tokens of Go source src to dst, comments included
// (as kindComment) and automatically inserted semicolons left out. It does
// not fill layout; see layout.
func tokenizeGo(dst []token, src []byte) []token {
	fset := gotoken.NewFileSet()
	file := fset.AddFile("", fset.Base(), len(src))
	var s scanner.Scanner
	s.Init(file, src, func(gotoken.Position, string) {}, scanner.ScanComments)
	for {
		pos, tok, lit := s.Scan()
		if tok == gotoken.EOF {
			break
		}
		if tok == gotoken.SEMICOLON && lit != ";" {
			continue // inserted at a newline or at the end of input
		}
		start := file.Offset(pos)
		text := lit
		if lit == "" {
			text = tok.String()
		}
		t := token{text: text, start: start, end: start + len(text), kind: goKind(tok)}
		if t.end > len(src) {
			t.end = len(src)
		}
		switch tok {
		case gotoken.STRING, gotoken.CHAR:
			if text[0] == '`' {
				// The scanner strips \r from raw strings: find the real end.
				t.end = len(src)
				for i := start + 1; i < len(src); i++ {
					if src[i] == '`' {
						t.end = i + 1
						break
					}
				}
			}
			t.open = t.end == len(src) && !closedLiteral(text)
		case gotoken.COMMENT:
			// The scanner drops the newline ending a line comment and strips
			// \r from comments, so measure a comment in the source itself.
			t.end = commentEnd(src, start)
			t.open = t.end == len(src) && (text[1] == '/' || len(text) < 4 || text[len(text)-2:] != "*/")
		}
		dst = append(dst, t)
	}
	return dst
}

func goKind(tok gotoken.Token) kind {
	switch {
	case tok == gotoken.IDENT:
		return kindIdent
	case tok.IsKeyword():
		return kindKeyword
	case tok == gotoken.INT:
		return kindInt
	case tok == gotoken.FLOAT:
		return kindFloat
	case tok == gotoken.IMAG:
		return kindImag
	case tok == gotoken.CHAR:
		return kindChar
	case tok == gotoken.STRING:
		return kindString
	case tok == gotoken.COMMENT:
		return kindComment
	case tok.IsOperator():
		return kindOp
	}
	return kindOther
}

// closedLiteral reports whether a Go string or rune literal ends with its
// closing quote.
func closedLiteral(lit string) bool {
	if len(lit) < 2 || lit[len(lit)-1] != lit[0] {
		return false
	}
	if lit[0] == '`' {
		return true
	}
	// The closing quote must not be escaped: count backslashes before it.
	n := 0
	for i := len(lit) - 2; i > 0 && lit[i] == '\\'; i-- {
		n++
	}
	return n%2 == 0
}

// commentEnd returns the offset just past the Go comment starting at start.
func commentEnd(src []byte, start int) int {
	if start+1 < len(src) && src[start+1] == '/' {
		for i := start; i < len(src); i++ {
			if src[i] == '\n' {
				return i
			}
		}
		return len(src)
	}
	for i := start + 2; i+1 < len(src); i++ {
		if src[i] == '*' && src[i+1] == '/' {
			return i + 2
		}
	}
	return len(src)
}
