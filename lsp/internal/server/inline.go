package server

import (
	"context"
	"encoding/json"
	"errors"

	"go.lsp.dev/protocol"

	"github.com/codingplan/codingplan/lsp/internal/complete"
	"github.com/codingplan/codingplan/lsp/internal/document"
	"github.com/codingplan/codingplan/lsp/internal/lspx"
	wire "github.com/codingplan/codingplan/shared"
)

// Completer is the completion engine (complete.Engine).
type Completer interface {
	Complete(ctx context.Context, in complete.Input) (complete.Result, error)
	// Forget drops what the engine keeps about a closed document.
	Forget(docKey string)
}

// Feedback counts what the user did with suggestions (numbers only). complete.Engine
// implements it; a Completer that does not is simply not told.
type Feedback interface {
	Shown(id string)
	Accepted(id string)
	PartiallyAccepted(id string)
}

// maxOtherDocuments bounds the documents passed to the engine as context.
const maxOtherDocuments = 8

// prepareInline handles textDocument/inlineCompletion (LSP 3.18).
func (s *Server) prepareInline(_ context.Context, raw json.RawMessage) (runFunc, error) {
	const method = protocol.MethodTextDocumentInlineCompletion
	var p protocol.InlineCompletionParams
	if err := decodeParams(method, raw, &p); err != nil {
		return nil, err
	}
	trigger := complete.Automatic
	switch p.Context.TriggerKind {
	case protocol.InlineCompletionTriggerKindInvoked:
		trigger = complete.Invoked
	case protocol.InlineCompletionTriggerKindAutomatic, 0:
	default:
		return nil, invalidParams("%s: context.triggerKind must be 1 (invoked) or 2 (automatic)", method)
	}
	in, doc, enc, err := s.completionInput(method, string(p.TextDocument.URI), p.Position, trigger)
	if err != nil {
		return nil, err
	}
	if sel := p.Context.SelectedCompletionInfo; sel != (protocol.SelectedCompletionInfo{}) {
		start, end, err := doc.Range(enc, sel.Range)
		if err != nil {
			return nil, invalidParams("%s: context.selectedCompletionInfo.range: %v", method, err)
		}
		in.Selected = &complete.Selected{Start: start, End: end, Text: sel.Text}
	}
	return func(ctx context.Context) (any, error) {
		list := &protocol.InlineCompletionList{Items: []protocol.InlineCompletionItem{}}
		res := s.complete(ctx, in)
		for _, it := range res.Items {
			r := doc.RangeOf(enc, it.Start, it.End)
			list.Items = append(list.Items, protocol.InlineCompletionItem{
				InsertText: protocol.String(it.InsertText),
				Range:      &r,
				Command:    acceptCommand(in.DocKey, it.ID),
			})
		}
		return list, nil
	}, nil
}

// completionInput checks a completion request's document and position and builds the
// engine's input from the snapshot the request refers to.
func (s *Server) completionInput(method, uri string, pos protocol.Position, trigger complete.Trigger) (complete.Input, *document.Doc, document.Encoding, error) {
	if uri == "" {
		return complete.Input{}, nil, 0, invalidParams("%s: textDocument.uri is required", method)
	}
	doc := s.docs.Get(uri)
	if doc == nil {
		return complete.Input{}, nil, 0, invalidParams("%s: document is not open: %s", method, wire.Clip(uri, 32))
	}
	settings, enc, _ := s.snapshot()
	off, err := doc.Offset(enc, pos)
	if err != nil {
		return complete.Input{}, nil, 0, invalidParams("%s: %v", method, err)
	}
	s.mu.Lock()
	debounces := clientDebounces(s.clientName)
	s.mu.Unlock()
	in := complete.Input{
		DocKey: uri, Text: doc.Text, Offset: off, Language: doc.LanguageID, RelPath: s.relPath(uri),
		Version: doc.Version, Trigger: trigger, Settings: settings, ClientDebounces: debounces,
	}
	if settings.SnippetChars > 0 {
		for _, o := range s.docs.Recent(uri, maxOtherDocuments) {
			in.Others = append(in.Others, complete.Other{RelPath: s.relPath(o.URI), Language: o.LanguageID, Text: o.Text})
		}
	}
	return in, doc, enc, nil
}

// complete asks the engine, unless completions are off (for the document's language), the
// request is automatic while the automatic setting is off, the file is ignored or there is no
// engine. An engine error gives no suggestions: the status notification tells the user about
// the connection, and a failed suggestion is not worth an error popup.
func (s *Server) complete(ctx context.Context, in complete.Input) complete.Result {
	if !s.enabledFor(in.Language) || (in.Trigger == complete.Automatic && !in.Settings.Automatic) ||
		s.cfg.Engine == nil || complete.Ignored(in.Settings.Ignore, in.RelPath) {
		return complete.Result{}
	}
	res, err := s.cfg.Engine.Complete(ctx, in)
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			s.log.Debug("completion failed", "code", string(wire.CodeOf(err)), "err", err)
		}
		return complete.Result{}
	}
	return res
}

// enabledFor reports whether completions are on for documents of language id lang: on for the
// session, and for that language by the enable setting.
func (s *Server) enabledFor(lang string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.enabled && s.settings.Enable.For(lang, s.forced)
}

func acceptCommand(uri, id string) protocol.Command {
	return protocol.Command{
		Title:     "codingplan: accepted",
		Command:   lspx.CommandAcceptCompletion,
		Arguments: []protocol.LSPAny{lspx.AcceptCompletionArgs{URI: uri, ID: id}.AppendJSON(nil)},
	}
}

// didShowCompletion counts a suggestion shown (a number; nothing else is kept).
func (s *Server) didShowCompletion(_ context.Context, raw json.RawMessage) error {
	var p lspx.DidShowCompletionParams
	if err := decodeParams(lspx.MethodDidShowCompletion, raw, &p); err != nil {
		return err
	}
	if f := s.feedback(); f != nil {
		f.Shown(itemID(p.Item))
	}
	return nil
}

// didPartiallyAccept counts a suggestion partly accepted.
func (s *Server) didPartiallyAccept(_ context.Context, raw json.RawMessage) error {
	var p lspx.DidPartiallyAcceptCompletionParams
	if err := decodeParams(lspx.MethodDidPartiallyAcceptCompletion, raw, &p); err != nil {
		return err
	}
	if f := s.feedback(); f != nil {
		f.PartiallyAccepted(itemID(p.Item))
	}
	return nil
}

// feedback returns the engine's Feedback side, if it has one.
func (s *Server) feedback() Feedback {
	f, _ := s.cfg.Engine.(Feedback)
	return f
}

// itemID finds a suggestion's id in the accept command it carries.
func itemID(it protocol.InlineCompletionItem) string {
	if len(it.Command.Arguments) == 0 {
		return ""
	}
	var a lspx.AcceptCompletionArgs
	if protocol.Unmarshal(it.Command.Arguments[0], &a) != nil {
		return ""
	}
	return a.ID
}
