package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	"go.lsp.dev/protocol"

	"github.com/codingplan/codingplan/lsp/internal/complete"
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

// runAction asks the backend for the action's result, with cancellable progress, and applies
// it: as a minimal edit if the document has not changed meanwhile, tests in the language's
// test file, or, for Explain, shown as a Markdown document.
func (s *Server) runAction(ctx context.Context, r actionRun) error {
	settings, _, _ := s.snapshot()
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
	var tests *testTarget
	if r.spec.mode == modeTestFile {
		tests = s.testTarget(r.doc)
		instruction += tests.instruction(r.doc, relPath)
	}
	req, err := complete.EditRequest(complete.EditInput{
		Text: r.doc.Text, Start: r.start, End: r.end, Instruction: instruction, Language: r.doc.LanguageID,
		RelPath: relPath, Diagnostics: r.diagnostics, Replaces: r.spec.mode == modeReplace, Settings: settings,
	})
	if errors.Is(err, complete.ErrSecretSelection) {
		s.showMessage(ctx, protocol.MessageTypeWarning, r.spec.title+
			": the selection holds what looks like a secret (a key, token or password), which is never sent. Select the code without it.")
		return nil
	}

	pctx, prog := s.beginProgress(ctx, r.token, r.spec.title, "asking the model")
	defer prog.end("")
	out, err := s.streamAction(pctx, req, prog, r.spec.doing)
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
		s.showAnswer(ctx, r, relPath, out)
		return nil
	}
	var edit []fileEdit
	var note string
	if tests != nil {
		edit, note = s.testsEdit(r, tests, out)
	} else {
		edit, note = s.selectionEdit(r, out)
	}
	if edit == nil {
		prog.end(note)
		return nil
	}
	s.finishEdit(ctx, pctx, prog, r.spec.title, edit, note)
	return nil
}

// streamAction streams req's answer, reporting its progress as what is being done and how
// many lines have come so far.
func (s *Server) streamAction(ctx context.Context, req wire.ClientFrame, prog *progress, doing string) (string, error) {
	var out strings.Builder
	lines := 0
	_, err := s.cfg.Backend.Stream(ctx, req, func(delta []byte) {
		if out.Len() == 0 && len(delta) > 0 {
			lines = 1
		}
		out.Write(delta)
		lines += bytes.Count(delta, []byte{'\n'})
		unit := "lines"
		if lines == 1 {
			unit = "line"
		}
		prog.report(fmt.Sprintf("%s… %d %s so far", doing, lines, unit))
	})
	return out.String(), err
}

// selectionEdit turns the model's answer into the edit of the selection: replacing it, or
// inserted after it. No edit means there is nothing to apply, and the user has been told why;
// the string is then the progress's end message, else a note to show once the edit is applied.
func (s *Server) selectionEdit(r actionRun, out string) ([]fileEdit, string) {
	ctx := context.Background()
	_, enc, _ := s.snapshot()
	nl := complete.LineEnding(r.doc.Text)
	result := complete.CleanOutput(out, r.doc.Text[r.start:r.end], nl)
	if strings.TrimSpace(result) == "" {
		s.showMessage(ctx, protocol.MessageTypeWarning, r.spec.title+": the model returned nothing to apply.")
		return nil, "no result"
	}
	start, end, newText := r.start, r.end, result
	if r.spec.mode != modeReplace {
		// After the selection, separated by a blank line.
		start, newText = r.end, nl+nl+strings.TrimSuffix(result, nl)
		if strings.HasSuffix(r.doc.Text[:r.end], "\n") {
			newText = nl + result
		}
	}
	if cur := s.docs.Get(r.doc.URI); cur == nil || cur.Version != r.doc.Version {
		s.showMessage(ctx, protocol.MessageTypeWarning, r.spec.title+
			": the document changed while the model was working, so its result was not applied. Run the action again.")
		return nil, "not applied"
	}
	es, ee, et := complete.MinimalEdit(r.doc.Text, start, end, newText)
	if es == ee && et == "" {
		s.showMessage(ctx, protocol.MessageTypeInfo, r.spec.title+": no change was needed.")
		return nil, "no change"
	}
	v := r.doc.Version
	return []fileEdit{{uri: r.doc.URI, version: &v, edit: protocol.TextEdit{Range: r.doc.RangeOf(enc, es, ee), NewText: et}}}, ""
}

// finishEdit applies edit, previewed where the client can, and says how it went: note is shown
// once it is applied.
func (s *Server) finishEdit(ctx, pctx context.Context, prog *progress, title string, edit []fileEdit, note string) {
	caps := s.editCaps()
	if caps.annotations {
		prog.reportNow("review the change, then apply or discard it")
	}
	err := s.applyEdit(pctx, title, workspaceEdit(caps, title, true, edit...))
	switch {
	case err != nil && caps.annotations && errors.Is(err, errNotApplied):
		prog.end("not applied")
		s.showMessage(ctx, protocol.MessageTypeInfo, title+": not applied (discarded, or the document changed); nothing was changed.")
	case err != nil:
		prog.end("not applied")
		s.showMessage(ctx, protocol.MessageTypeWarning, title+": the edit was not applied: "+err.Error())
	default:
		prog.end("applied")
		if !caps.annotations {
			// No preview: say what happened, and how to take it back.
			note = strings.TrimSpace(note + " Applied as one edit: undo takes it back.")
		}
		if note != "" {
			s.showMessage(ctx, protocol.MessageTypeInfo, title+": "+note)
		}
	}
}

// showAnswer shows Explain's whole answer as a Markdown document where the client can open
// one, else as a message.
func (s *Server) showAnswer(ctx context.Context, r actionRun, relPath, out string) {
	answer := strings.TrimSpace(out)
	_, enc, _ := s.snapshot()
	rg := r.doc.RangeOf(enc, r.start, r.end)
	where := fmt.Sprintf("%s, lines %d–%d", relPath, rg.Start.Line+1, rg.End.Line+1)
	if !s.clientShowsMarkdown() {
		s.showMessage(ctx, protocol.MessageTypeInfo, r.spec.title+" ("+where+")\n\n"+answer)
		return
	}
	s.notify(ctx, lspx.MethodShowMarkdown, lspx.ShowMarkdownParams{
		Title:    strings.TrimPrefix(r.spec.title, "codingplan: ") + ": " + path.Base(relPath),
		Markdown: "# " + strings.TrimPrefix(r.spec.title, "codingplan: ") + ": " + where + "\n\n" + answer + "\n",
	})
}

// clientShowsMarkdown says the client handles codingplan/showMarkdown.
func (s *Server) clientShowsMarkdown() bool {
	s.mu.Lock()
	raw := s.caps.Experimental
	s.mu.Unlock()
	var exp struct {
		Codingplan lspx.ExperimentalCaps `json:"codingplan"`
	}
	return len(raw) > 0 && protocol.Unmarshal(raw, &exp) == nil && exp.Codingplan.ShowMarkdown
}

// backendProblem says in plain words what went wrong with the backend, for the user: what
// happened, the backend's own message (which never holds content), and what to do.
func backendProblem(err error) string {
	var we *wire.Error
	switch {
	case errors.Is(err, remote.ErrSignedOut):
		return "you are signed out. Sign in with the codingplan.signIn command (Sign In), or set CODINGPLAN_API_KEY or CODINGPLAN_TOKEN."
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
			return what + " (the backend says: " + wire.Clip(m, 200) + ")."
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

// showMessage tells the user something through window/showMessage.
func (s *Server) showMessage(ctx context.Context, typ protocol.MessageType, msg string) {
	s.notify(ctx, "window/showMessage", protocol.ShowMessageParams{Type: typ, Message: msg})
}
