package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"go.lsp.dev/protocol"
	"go.lsp.dev/uri"

	"github.com/codingplan/codingplan/lsp/internal/complete"
	"github.com/codingplan/codingplan/lsp/internal/config"
	"github.com/codingplan/codingplan/lsp/internal/document"
	"github.com/codingplan/codingplan/lsp/internal/lspx"
	"github.com/codingplan/codingplan/lsp/internal/remote"
	wire "github.com/codingplan/codingplan/shared"
)

// actionRun is one code action to run on a document snapshot.
type actionRun struct {
	doc         *document.Doc
	start, end  int // the selection, byte offsets in doc
	kind        string
	spec        actionSpec
	instruction string // Rewrite's, from the user
	diagnostics []string
	token       protocol.ProgressToken // the client's work-done token, if it gave one
}

// editMaxTokens is the output budget of an edit: more than a completion's.
func editMaxTokens(s config.Settings) int {
	return min(max(4*s.MaxTokens, 2048), wire.MaxTokensLimit)
}

// runAction asks the backend for the action's result, with cancellable progress, and applies
// it: as a minimal edit if the document has not changed meanwhile, or shown as a message for
// Explain.
func (s *Server) runAction(ctx context.Context, r actionRun) error {
	settings, enc, _ := s.snapshot()
	if s.cfg.Backend == nil {
		return errors.New("no backend connection is configured")
	}
	relPath := s.relPath(r.doc.URI)
	if complete.Ignored(settings.Ignore, relPath) {
		s.showMessage(ctx, protocol.MessageTypeWarning, r.spec.title+": this file matches the ignore setting, so nothing was sent.")
		return nil
	}
	instruction := r.spec.instruction
	if r.kind == lspx.KindRewrite {
		instruction = r.instruction + rewriteSuffix
	}
	text := r.doc.Text
	pre := text[clampBack(text, r.start-settings.PrefixChars):r.start]
	suf := text[r.end:clampForward(text, r.end+settings.SuffixChars)]
	// Secrets are masked before sending. A masked selection would come back with placeholders
	// where the secrets stood, so an action that replaces the selection is refused instead.
	selection := text[r.start:r.end]
	if masked := complete.Mask(selection); masked != selection {
		if r.spec.mode == modeReplace {
			s.showMessage(ctx, protocol.MessageTypeWarning, r.spec.title+
				": the selection holds what looks like a secret (a key, token or password), which is never sent. Select the code without it.")
			return nil
		}
		selection = masked
	}
	edit := &wire.Edit{
		Instruction: wire.Text(instruction),
		Selection:   wire.Text(selection),
		Prefix:      wire.Text(complete.Mask(pre)),
		Suffix:      wire.Text(complete.Mask(suf)),
		Language:    r.doc.LanguageID,
		Path:        relPath,
	}
	for _, d := range r.diagnostics {
		edit.Diagnostics = append(edit.Diagnostics, wire.Text(complete.Mask(d)))
	}
	req := wire.ClientFrame{Op: wire.OpEdit, Model: settings.Model, MaxTokens: editMaxTokens(settings), Edit: edit}

	pctx, prog := s.beginProgress(ctx, r.token, r.spec.title)
	defer prog.end("")
	var out strings.Builder
	received := 0
	_, err := s.cfg.Backend.Stream(pctx, req, func(delta []byte) {
		out.Write(delta)
		received += utf8.RuneCount(delta)
		prog.report(fmt.Sprintf("%d characters received", received))
	})
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return ctx.Err() // the request itself was cancelled
		case pctx.Err() != nil:
			prog.end("cancelled")
			return nil
		}
		prog.end("failed")
		s.showMessage(ctx, protocol.MessageTypeError, r.spec.title+" failed: "+backendProblem(err))
		return nil
	}
	if r.spec.mode == modeShow {
		prog.end("done")
		s.showMessage(ctx, protocol.MessageTypeInfo, r.spec.title+"\n\n"+strings.TrimSpace(out.String()))
		return nil
	}
	nl := lineEnding(r.doc.Text)
	result := cleanOutput(out.String(), r.doc.Text[r.start:r.end], nl)
	if strings.TrimSpace(result) == "" {
		prog.end("no result")
		s.showMessage(ctx, protocol.MessageTypeWarning, r.spec.title+": the model returned nothing to apply.")
		return nil
	}
	start, end, newText := r.start, r.end, result
	if r.spec.mode == modeInsertAfter {
		// After the selection, separated by a blank line.
		start, newText = r.end, nl+nl+strings.TrimSuffix(result, nl)
		if strings.HasSuffix(r.doc.Text[:r.end], "\n") {
			newText = nl + result
		}
	}
	if cur := s.docs.Get(r.doc.URI); cur == nil || cur.Version != r.doc.Version {
		prog.end("not applied")
		s.showMessage(ctx, protocol.MessageTypeWarning, r.spec.title+
			": the document changed while the model was working, so its result was not applied. Run the action again.")
		return nil
	}
	es, ee, et := minimalEdit(r.doc.Text, start, end, newText)
	if es == ee && et == "" {
		prog.end("no change")
		s.showMessage(ctx, protocol.MessageTypeInfo, r.spec.title+": no change was needed.")
		return nil
	}
	if err := s.applyEdit(pctx, r.spec.title, r.doc, protocol.TextEdit{Range: r.doc.RangeOf(enc, es, ee), NewText: et}); err != nil {
		prog.end("not applied")
		s.showMessage(ctx, protocol.MessageTypeWarning, r.spec.title+": the edit was not applied: "+err.Error())
		return nil
	}
	prog.end("applied")
	return nil
}

// applyEdit asks the client to apply edit to doc, naming doc's version where the client
// checks versions.
func (s *Server) applyEdit(ctx context.Context, label string, doc *document.Doc, edit protocol.TextEdit) error {
	s.mu.Lock()
	ws := s.caps.Workspace
	s.mu.Unlock()
	var we protocol.WorkspaceEdit
	if ws != nil && ws.WorkspaceEdit != nil && ws.WorkspaceEdit.DocumentChanges != nil && *ws.WorkspaceEdit.DocumentChanges {
		v := doc.Version
		we.DocumentChanges = []protocol.DocumentChange{&protocol.TextDocumentEdit{
			TextDocument: protocol.OptionalVersionedTextDocumentIdentifier{
				TextDocumentIdentifier: protocol.TextDocumentIdentifier{URI: uri.URI(doc.URI)}, Version: &v},
			Edits: []protocol.TextDocumentEditElement{&edit},
		}}
	} else {
		we.Changes = map[uri.URI][]protocol.TextEdit{uri.URI(doc.URI): {edit}}
	}
	var res protocol.ApplyWorkspaceEditResult
	if err := s.call(ctx, protocol.MethodWorkspaceApplyEdit, &protocol.ApplyWorkspaceEditParams{Label: &label, Edit: we}, &res); err != nil {
		return fmt.Errorf("the editor refused it (%w)", err)
	}
	if !res.Applied {
		if res.FailureReason != nil && *res.FailureReason != "" {
			return errors.New(clip(*res.FailureReason))
		}
		return errors.New("the editor did not apply it")
	}
	return nil
}

// backendProblem says in plain words what went wrong with the backend, for the user: what
// happened, the backend's own message (which never holds content), and what to do.
func backendProblem(err error) string {
	var we *wire.Error
	switch {
	case errors.Is(err, remote.ErrSignedOut):
		return "you are signed out. Sign in with the codingplan.signIn command, or set CODINGPLAN_TOKEN."
	case errors.Is(err, remote.ErrDisconnected):
		return "the backend cannot be reached right now. codingplan reconnects by itself; try again in a moment."
	case errors.As(err, &we):
		return wireProblem(we)
	}
	return sentence(err.Error())
}

// wireProblem explains a backend's error frame.
func wireProblem(e *wire.Error) string {
	said := func(what string) string {
		if m := strings.TrimRight(strings.TrimSpace(e.Message), "."); m != "" {
			return what + " (the backend says: " + clip200(m) + ")."
		}
		return what + "."
	}
	switch e.Code {
	case wire.CodeRateLimited:
		msg := said("your plan's requests at once are all in use")
		if e.RetryAfterMS > 0 {
			return msg + fmt.Sprintf(" Try again in %.1f s.", float64(e.RetryAfterMS)/1000)
		}
		return msg + " Try again shortly."
	case wire.CodeQuotaExceeded:
		return said("your plan does not allow this")
	case wire.CodeUpstreamUnavailable:
		return said("the model provider did not answer") + " Try again later."
	case wire.CodeUpstreamError:
		return said("the model could not answer this request") + " Try again later."
	case wire.CodeTooLarge:
		return said("the selection and the code around it are too large for the backend") + " Select less code."
	case wire.CodeUnauthorized, wire.CodeTokenExpired:
		return said("the backend did not accept your token") + " Sign in again with the codingplan.signIn command."
	case wire.CodeBadRequest:
		return said("the backend refused the request")
	case wire.CodeCanceled:
		return said("the request was cancelled")
	}
	if e.RetryAfterMS > 0 {
		return said("the backend cannot serve this right now") + fmt.Sprintf(" Try again in %.1f s.", float64(e.RetryAfterMS)/1000)
	}
	return said("the backend failed") + " Try again."
}

// sentence ends s with a period.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" || strings.HasSuffix(s, ".") {
		return s
	}
	return s + "."
}

// clip200 shortens a message from the backend to 200 bytes at a character boundary.
func clip200(s string) string {
	if len(s) <= 200 {
		return s
	}
	return s[:clampForward(s, 200)] + "…"
}

// minimalEdit returns the smallest edit that turns text[start:end] into newText: the common
// prefix and suffix are left alone. It never splits a character or a CRLF.
func minimalEdit(text string, start, end int, newText string) (int, int, string) {
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

// cleanOutput turns the model's answer into text for the document: a Markdown code fence
// around the whole answer is removed, lines end with nl, and a final line ending is kept or
// dropped as the selection has one or not.
func cleanOutput(out, selection, nl string) string {
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

// lineEnding returns "\r\n" when text's lines end so, else "\n".
func lineEnding(text string) string {
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

// showMessage tells the user something through window/showMessage.
func (s *Server) showMessage(ctx context.Context, typ protocol.MessageType, msg string) {
	s.notify(ctx, "window/showMessage", protocol.ShowMessageParams{Type: typ, Message: msg})
}
