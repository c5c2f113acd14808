package complete

import (
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/codingplan/codingplan/lsp/internal/config"
	wire "github.com/codingplan/codingplan/shared"
)

// The edit side of code actions: building the request from a selection, and turning the model's
// answer into an edit of the document.

// ErrSecretSelection: the selection holds what looks like a secret, which is never sent, and the
// action would replace the selection (its masked form would come back with placeholders).
var ErrSecretSelection = errors.New("the selection holds what looks like a secret")

// EditInput is what an edit request is built from.
type EditInput struct {
	Text        string // the document
	Start, End  int    // the selection, byte offsets in Text
	Instruction string
	Language    string
	RelPath     string
	Diagnostics []string // one line each, for Fix
	Replaces    bool     // the answer replaces the selection
	Settings    config.Settings
}

// EditRequest builds the edit request: the selection with up to the settings' prefix and
// suffix around it, secrets masked everywhere.
func EditRequest(in EditInput) (wire.ClientFrame, error) {
	text := in.Text
	pre := text[clampBack(text, in.Start-in.Settings.PrefixChars):in.Start]
	suf := text[in.End:clampForward(text, in.End+in.Settings.SuffixChars)]
	selection := text[in.Start:in.End]
	if masked := Mask(selection); masked != selection {
		if in.Replaces {
			return wire.ClientFrame{}, ErrSecretSelection
		}
		selection = masked
	}
	edit := &wire.Edit{
		Instruction: wire.Text(in.Instruction),
		Selection:   wire.Text(selection),
		Prefix:      wire.Text(Mask(pre)),
		Suffix:      wire.Text(Mask(suf)),
		Language:    in.Language,
		Path:        in.RelPath,
	}
	for _, d := range in.Diagnostics {
		edit.Diagnostics = append(edit.Diagnostics, wire.Text(Mask(d)))
	}
	return wire.ClientFrame{Op: wire.OpEdit, Model: in.Settings.Model, MaxTokens: editMaxTokens(in.Settings), Edit: edit}, nil
}

// editMaxTokens is the output budget of an edit: more than a completion's.
func editMaxTokens(s config.Settings) int {
	return min(max(4*s.MaxTokens, 2048), wire.MaxTokensLimit)
}

// MinimalEdit returns the smallest edit that turns text[start:end] into newText: the common
// prefix and suffix are left alone. It never splits a character or a CRLF.
func MinimalEdit(text string, start, end int, newText string) (int, int, string) {
	old := text[start:end]
	p := 0
	for p < len(old) && p < len(newText) && old[p] == newText[p] {
		p++
	}
	for p > 0 && ((p < len(old) && !utf8.RuneStart(old[p])) || (p < len(newText) && !utf8.RuneStart(newText[p])) ||
		(old[p-1] == '\r' && p < len(old) && old[p] == '\n')) {
		p--
	}
	q := 0
	for q < len(old)-p && q < len(newText)-p && old[len(old)-1-q] == newText[len(newText)-1-q] {
		q++
	}
	for q > 0 && (!utf8.RuneStart(old[len(old)-q]) || (old[len(old)-q] == '\n' && len(old)-q > 0 && old[len(old)-q-1] == '\r')) {
		q--
	}
	return start + p, end - q, newText[p : len(newText)-q]
}

// CleanOutput turns the model's answer into text for the document: a Markdown code fence
// around the whole answer is removed, lines end with nl, and a final line ending is kept or
// dropped as the selection has one or not.
func CleanOutput(out, selection, nl string) string {
	t := strings.TrimSpace(strings.ReplaceAll(out, "\r\n", "\n"))
	if strings.HasPrefix(t, "```") && strings.HasSuffix(t, "```") && len(t) >= 6 {
		if nl := strings.IndexByte(t, '\n'); nl >= 0 {
			t = strings.TrimSuffix(t[nl+1:], "```")
			t = strings.TrimRight(t, " \t\n")
		}
	}
	if lead := leadingBlank(selection); lead != "" && !strings.HasPrefix(t, lead) && leadingBlank(t) == "" {
		t = lead + t // the model dropped the first line's indentation
	}
	if strings.HasSuffix(strings.ReplaceAll(selection, "\r\n", "\n"), "\n") {
		t += "\n"
	}
	if nl != "\n" {
		t = strings.ReplaceAll(t, "\n", nl)
	}
	return t
}

// leadingBlank returns the spaces and tabs that start s.
func leadingBlank(s string) string {
	return s[:len(s)-len(strings.TrimLeft(s, " \t"))]
}

// LineEnding returns "\r\n" when text's lines end so, else "\n".
func LineEnding(text string) string {
	if n := strings.Count(text, "\n"); n > 0 && strings.Count(text, "\r\n")*2 > n {
		return "\r\n"
	}
	return "\n"
}

// clampBack moves off up to a character boundary at or after max(off, 0).
func clampBack(text string, off int) int {
	off = max(off, 0)
	for off < len(text) && !utf8.RuneStart(text[off]) {
		off++
	}
	return off
}

// clampForward moves off down to a character boundary at or before min(off, len(text)).
func clampForward(text string, off int) int {
	off = min(off, len(text))
	for off > 0 && off < len(text) && !utf8.RuneStart(text[off]) {
		off--
	}
	return off
}
