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
	var out strings.Builder
	received := 0
	_, err = s.cfg.Backend.Stream(pctx, req, func(delta []byte) {
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
	nl := complete.LineEnding(r.doc.Text)
	result := complete.CleanOutput(out.String(), r.doc.Text[r.start:r.end], nl)
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
	es, ee, et := complete.MinimalEdit(r.doc.Text, start, end, newText)
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
			return errors.New(wire.Clip(*res.FailureReason, 200))
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
