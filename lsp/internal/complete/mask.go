package complete

import (
	"regexp"
	"strings"
)

// Placeholders that replace masked secrets; each says what kind of secret stood there, so the
// model still sees well-formed code.
const (
	phPrivateKey = "<private-key>"
	phAWS        = "<aws-access-key-id>"
	phGitHub     = "<github-token>"
	phSlack      = "<slack-token>"
	phAnthropic  = "<anthropic-api-key>"
	phOpenAI     = "<openai-api-key>"
	phJWT        = "<jwt>"
	phPassword   = "<password>"
	phSecret     = "<secret>"
	phAPIKey     = "<api-key>"
	phToken      = "<token>"
)

var (
	// A private key block, possibly cut off by the context budget at either end. The body is
	// base64 with optional headers, also inside a string with \n escapes.
	keyBody      = `[A-Za-z0-9+/=\s:,.\\-]*?`
	rePrivateKey = regexp.MustCompile(`-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----` + keyBody + `(-----END ([A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----|\z)`)
	reKeyTail    = regexp.MustCompile(`\A` + keyBody + `(-----END ([A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----)`)

	// Token formats with a recognisable prefix.
	reTokens = regexp.MustCompile(`\b(?:` +
		`(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}` +
		`|gh[pousr]_[A-Za-z0-9]{36,255}` +
		`|github_pat_[A-Za-z0-9_]{22,255}` +
		`|xox[baprs]-[A-Za-z0-9-]{10,}` +
		`|sk-[A-Za-z0-9_-]{20,}` +
		`|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}` +
		`)\b`)

	// name = "value" and friends, for names that say the value is secret.
	secretName = `[A-Za-z0-9_.-]*(?i:password|passwd|pwd|secret|api[_-]?key|apikey|access[_-]?key|private[_-]?key|token)[A-Za-z0-9_.-]*`
	reQuoted   = regexp.MustCompile(`(` + secretName + `)(["']?\s*(?::=|=|:)\s*)(["'` + "`" + `])([^"'` + "`" + `\r\n]{3,})(["'` + "`" + `])`)
	// NAME=value in .env, YAML and properties files.
	reBare = regexp.MustCompile(`(?m)^(\s*(?:export\s+)?` + secretName + `\s*[:=][ \t]*)([^\s"'` + "`" + `#][^\s#]*)`)
)

// Mask replaces secrets in s (private key blocks, cloud and service tokens, JWTs, and values
// assigned to names like password or api_key) with placeholders of the same kind. Text
// without secrets comes back unchanged.
func Mask(s string) string {
	if strings.Contains(s, "PRIVATE KEY") {
		s = rePrivateKey.ReplaceAllStringFunc(s, maskKeyBlock)
		if i, j := strings.Index(s, "-----END "), strings.Index(s, "-----BEGIN "); i >= 0 && (j < 0 || i < j) {
			if m := reKeyTail.FindStringSubmatchIndex(s); m != nil && !strings.Contains(s[:m[1]], phPrivateKey) {
				s = phPrivateKey + "\n" + s[m[2]:]
			}
		}
	}
	if maybeToken(s) {
		s = reTokens.ReplaceAllStringFunc(s, tokenPlaceholder)
	}
	if maybeNamedSecret(s) {
		s = replaceGroup(reQuoted, s, 4, func(m []string) string { return namedPlaceholder(m[1]) })
		s = replaceGroup(reBare, s, 2, func(m []string) string {
			if !secretLooking(m[2]) {
				return m[2]
			}
			return namedPlaceholder(m[1])
		})
	}
	return s
}

func maskKeyBlock(block string) string {
	m := rePrivateKey.FindStringSubmatch(block)
	begin := block[:5+strings.Index(block[5:], "-----")+5] // the BEGIN line
	end := m[3]
	if end == "" {
		return begin + "\n" + phPrivateKey
	}
	return begin + "\n" + phPrivateKey + "\n" + end
}

func maybeToken(s string) bool {
	for _, p := range []string{"AKIA", "ASIA", "ABIA", "ACCA", "gh", "github_pat_", "xox", "sk-", "eyJ"} {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

func tokenPlaceholder(t string) string {
	switch {
	case strings.HasPrefix(t, "gh") || strings.HasPrefix(t, "github_pat_"):
		return phGitHub
	case strings.HasPrefix(t, "xox"):
		return phSlack
	case strings.HasPrefix(t, "sk-ant-"):
		return phAnthropic
	case strings.HasPrefix(t, "sk-"):
		return phOpenAI
	case strings.HasPrefix(t, "eyJ"):
		return phJWT
	}
	return phAWS
}

// maybeNamedSecret reports whether s may hold a name secretName matches: pass, pwd, secret,
// key or token in any case. One pass, no allocation.
func maybeNamedSecret(s string) bool {
	for i := 0; i+3 <= len(s); i++ {
		switch s[i] | 0x20 {
		case 'p':
			if hasFold(s[i:], "pass") || hasFold(s[i:], "pwd") {
				return true
			}
		case 's':
			if hasFold(s[i:], "secret") {
				return true
			}
		case 'k':
			if hasFold(s[i:], "key") {
				return true
			}
		case 't':
			if hasFold(s[i:], "token") {
				return true
			}
		}
	}
	return false
}

// hasFold reports whether s starts with the lower-case ASCII word w, in any case.
func hasFold(s, w string) bool {
	if len(s) < len(w) {
		return false
	}
	for i := 0; i < len(w); i++ {
		if s[i]|0x20 != w[i] {
			return false
		}
	}
	return true
}

func namedPlaceholder(name string) string {
	l := strings.ToLower(name)
	switch {
	case strings.Contains(l, "pass") || strings.Contains(l, "pwd"):
		return phPassword
	case strings.Contains(l, "secret"):
		return phSecret
	case strings.Contains(l, "token"):
		return phToken
	}
	return phAPIKey
}

// secretLooking tells a bare value that looks like a credential from code such as a function
// call, a reference or a plain word.
func secretLooking(v string) bool {
	if len(v) < 6 || strings.ContainsAny(v, "()[]{}<>$,;") || dottedName(v) {
		return false
	}
	switch strings.ToLower(v) {
	case "true", "false", "null", "none", "nil", "changeme":
		return false
	}
	return strings.ContainsAny(v, "0123456789+/=_-")
}

// dottedName reports whether v is a qualified name like hashlib.sha256.
func dottedName(v string) bool {
	if !strings.Contains(v, ".") {
		return false
	}
	for part := range strings.SplitSeq(v, ".") {
		if part == "" || !isIdentStart(part[0]) {
			return false
		}
		for i := 1; i < len(part); i++ {
			if c := part[i]; !isIdentStart(c) && (c < '0' || c > '9') {
				return false
			}
		}
	}
	return true
}

// replaceGroup replaces submatch group of each match of re in s with repl's result; repl gets
// the submatches.
func replaceGroup(re *regexp.Regexp, s string, group int, repl func(m []string) string) string {
	idx := re.FindAllStringSubmatchIndex(s, -1)
	if idx == nil {
		return s
	}
	var b strings.Builder
	last := 0
	for _, m := range idx {
		sub := make([]string, len(m)/2)
		for i := range sub {
			if m[2*i] >= 0 {
				sub[i] = s[m[2*i]:m[2*i+1]]
			}
		}
		b.WriteString(s[last:m[2*group]])
		b.WriteString(repl(sub))
		last = m[2*group+1]
	}
	b.WriteString(s[last:])
	return b.String()
}
