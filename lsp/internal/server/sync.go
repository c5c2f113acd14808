package server

import (
	"context"
	"encoding/json"
	"runtime"
	"runtime/debug"

	"go.lsp.dev/protocol"

	"github.com/codingplan/codingplan/lsp/internal/document"
)

// Document sync (incremental). These run on the read loop, in the order the client sent them.

func (s *Server) didOpen(_ context.Context, raw json.RawMessage) error {
	var p protocol.DidOpenTextDocumentParams
	if err := decodeParams("textDocument/didOpen", raw, &p); err != nil {
		return err
	}
	if p.TextDocument.URI == "" {
		return invalidParams("textDocument/didOpen: textDocument.uri is required")
	}
	s.docs.Open(document.New(string(p.TextDocument.URI), string(p.TextDocument.LanguageID), p.TextDocument.Version, p.TextDocument.Text))
	return nil
}

// didChange applies a document change; each change is ranged or replaces the whole document.
func (s *Server) didChange(ctx context.Context, raw json.RawMessage) error {
	var p protocol.DidChangeTextDocumentParams
	if err := decodeParams("textDocument/didChange", raw, &p); err != nil {
		return err
	}
	changes := make([]document.Change, 0, len(p.ContentChanges))
	for _, c := range p.ContentChanges {
		switch c := c.(type) {
		case *protocol.TextDocumentContentChangePartial:
			changes = append(changes, document.Change{Range: &c.Range, Text: c.Text})
		case *protocol.TextDocumentContentChangeWholeDocument:
			changes = append(changes, document.Change{Text: c.Text})
		}
	}
	_, enc, _ := s.snapshot()
	if _, err := s.docs.Change(string(p.TextDocument.URI), enc, p.TextDocument.Version, changes); err != nil {
		// The server's copy no longer matches the editor's: forget it rather than complete
		// against the wrong text. The next didOpen brings it back.
		s.docs.Close(string(p.TextDocument.URI))
		s.notify(ctx, "window/logMessage", protocol.LogMessageParams{Type: protocol.MessageTypeWarning,
			Message: "codingplan: a change to an open document could not be applied, so the document is ignored until it is opened again: " + err.Error()})
		return err
	}
	return nil
}

func (s *Server) didClose(_ context.Context, raw json.RawMessage) error {
	var p protocol.DidCloseTextDocumentParams
	if err := decodeParams("textDocument/didClose", raw, &p); err != nil {
		return err
	}
	s.docs.Close(string(p.TextDocument.URI))
	if s.cfg.Engine != nil {
		s.cfg.Engine.Forget(string(p.TextDocument.URI))
	}
	scrub()
	return nil
}

// scrub collects the garbage twice and hands the freed pages back to the system, which zeroes
// them: a closed document's text and what was made of it (prompts, suggestions, messages) do
// not stay in freed memory for the runtime to reuse whenever it gets to it. The first
// collection moves what sync.Pools hold (encoding/json's encoders among them) aside, the
// second frees it. Built with runtime/secret (see cmd/codingplan-lsp), the runtime also
// erases each freed object as it sweeps, in pages it keeps too. A collection of the server's
// small heap takes a few milliseconds; editors close documents one at a time.
func scrub() {
	runtime.GC()
	debug.FreeOSMemory()
}
