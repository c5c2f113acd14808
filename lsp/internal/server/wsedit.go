package server

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.lsp.dev/protocol"
	"go.lsp.dev/uri"

	"github.com/codingplan/codingplan/lsp/internal/lspx"
	wire "github.com/codingplan/codingplan/shared"
)

// The workspace edits code actions apply: shaped for what the client's workspace/applyEdit
// supports, with a preview where it can show one.

// editCaps is what the client's workspace/applyEdit can do.
type editCaps struct {
	documentChanges bool // versioned TextDocumentEdits in documentChanges
	create          bool // CreateFile operations
	annotations     bool // change annotations: needsConfirmation shows a preview first
}

// editCaps reads the client's workspace edit capabilities.
func (s *Server) editCaps() editCaps {
	s.mu.Lock()
	defer s.mu.Unlock()
	ws := s.caps.Workspace
	if ws == nil || ws.WorkspaceEdit == nil {
		return editCaps{}
	}
	we := ws.WorkspaceEdit
	c := editCaps{documentChanges: we.DocumentChanges != nil && *we.DocumentChanges}
	c.create = c.documentChanges && slices.Contains(we.ResourceOperations, protocol.ResourceOperationKindCreate)
	c.annotations = c.documentChanges && we.ChangeAnnotationSupport != nil
	return c
}

// fileEdit is one file's part of a workspace edit.
type fileEdit struct {
	uri     string
	version *int32 // the open document's version; nil for a file the editor does not have open
	create  bool   // create the file first (if it does not exist); needs editCaps.create
	edit    protocol.TextEdit
}

// workspaceEdit builds the edit of label from parts. With preview and a client that supports
// change annotations, every part carries the annotation that asks the user to confirm it.
func workspaceEdit(c editCaps, label string, preview bool, parts ...fileEdit) protocol.WorkspaceEdit {
	var we protocol.WorkspaceEdit
	if !c.documentChanges {
		we.Changes = map[uri.URI][]protocol.TextEdit{}
		for _, p := range parts {
			we.Changes[uri.URI(p.uri)] = append(we.Changes[uri.URI(p.uri)], p.edit)
		}
		return we
	}
	var id protocol.ChangeAnnotationIdentifier
	if preview && c.annotations {
		id = lspx.AnnotationPreview
		yes, desc := true, "Review the change codingplan's model proposes, then apply or discard it."
		we.ChangeAnnotations = map[protocol.ChangeAnnotationIdentifier]protocol.ChangeAnnotation{
			id: {Label: label, NeedsConfirmation: &yes, Description: &desc},
		}
	}
	for _, p := range parts {
		if p.create {
			yes := true
			we.DocumentChanges = append(we.DocumentChanges, &protocol.CreateFile{
				ResourceOperation: protocol.ResourceOperation{Kind: "create", AnnotationID: id},
				Kind:              "create", URI: uri.URI(p.uri),
				Options: &protocol.CreateFileOptions{IgnoreIfExists: &yes},
			})
		}
		var edit protocol.TextDocumentEditElement = &p.edit
		if id != "" {
			edit = &protocol.AnnotatedTextEdit{TextEdit: p.edit, AnnotationID: id}
		}
		we.DocumentChanges = append(we.DocumentChanges, &protocol.TextDocumentEdit{
			TextDocument: protocol.OptionalVersionedTextDocumentIdentifier{
				TextDocumentIdentifier: protocol.TextDocumentIdentifier{URI: uri.URI(p.uri)}, Version: p.version},
			Edits: []protocol.TextDocumentEditElement{edit},
		})
	}
	return we
}

// errNotApplied: the client did not apply the edit (the user discarded its preview, or the
// document changed).
var errNotApplied = errors.New("the editor did not apply it")

// applyEdit asks the client to apply we.
func (s *Server) applyEdit(ctx context.Context, label string, we protocol.WorkspaceEdit) error {
	var res protocol.ApplyWorkspaceEditResult
	if err := s.call(ctx, protocol.MethodWorkspaceApplyEdit, &protocol.ApplyWorkspaceEditParams{Label: &label, Edit: we}, &res); err != nil {
		return fmt.Errorf("the editor refused it (%w)", err)
	}
	if !res.Applied {
		if res.FailureReason != nil && *res.FailureReason != "" {
			return fmt.Errorf("%w: %s", errNotApplied, wire.Clip(*res.FailureReason, 200))
		}
		return errNotApplied
	}
	return nil
}
