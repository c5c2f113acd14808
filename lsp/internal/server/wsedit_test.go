package server

import (
	"testing"

	"go.lsp.dev/protocol"
)

// TestWorkspaceEditShapes pins the workspace edits code actions send, for each kind of client.
func TestWorkspaceEditShapes(t *testing.T) {
	v := int32(3)
	replace := fileEdit{uri: "file:///w/a.go", version: &v, edit: protocol.TextEdit{NewText: "x"}}
	create := fileEdit{uri: "file:///w/a_test.go", create: true, edit: protocol.TextEdit{NewText: "t"}}
	const (
		rng      = `"range":{"start":{"line":0,"character":0},"end":{"line":0,"character":0}}`
		annotate = `"changeAnnotations":{"codingplan.preview":{"label":"L","needsConfirmation":true,` +
			`"description":"Review the change codingplan's model proposes, then apply or discard it."}}`
	)
	tests := []struct {
		name    string
		caps    editCaps
		preview bool
		parts   []fileEdit
		want    string
	}{
		{"changes only", editCaps{}, true, []fileEdit{replace},
			`{"changes":{"file:///w/a.go":[{` + rng + `,"newText":"x"}]}}`},
		{"versioned", editCaps{documentChanges: true}, true, []fileEdit{replace},
			`{"documentChanges":[{"textDocument":{"uri":"file:///w/a.go","version":3},"edits":[{` + rng + `,"newText":"x"}]}]}`},
		{"annotated", editCaps{documentChanges: true, annotations: true}, true, []fileEdit{replace},
			`{"documentChanges":[{"textDocument":{"uri":"file:///w/a.go","version":3},"edits":[{` + rng +
				`,"newText":"x","annotationId":"codingplan.preview"}]}],` + annotate + `}`},
		{"annotations without preview", editCaps{documentChanges: true, annotations: true}, false, []fileEdit{replace},
			`{"documentChanges":[{"textDocument":{"uri":"file:///w/a.go","version":3},"edits":[{` + rng + `,"newText":"x"}]}]}`},
		{"create", editCaps{documentChanges: true, create: true}, true, []fileEdit{create},
			`{"documentChanges":[{"kind":"create","uri":"file:///w/a_test.go","options":{"ignoreIfExists":true}},` +
				`{"textDocument":{"uri":"file:///w/a_test.go","version":null},"edits":[{` + rng + `,"newText":"t"}]}]}`},
		{"create annotated", editCaps{documentChanges: true, create: true, annotations: true}, true, []fileEdit{create},
			`{"documentChanges":[{"annotationId":"codingplan.preview","kind":"create","uri":"file:///w/a_test.go","options":{"ignoreIfExists":true}},` +
				`{"textDocument":{"uri":"file:///w/a_test.go","version":null},"edits":[{` + rng +
				`,"newText":"t","annotationId":"codingplan.preview"}]}],` + annotate + `}`},
	}
	for _, tt := range tests {
		got, err := protocol.Marshal(workspaceEdit(tt.caps, "L", tt.preview, tt.parts...))
		if err != nil || string(got) != tt.want {
			t.Errorf("%s:\n got %s (%v)\nwant %s", tt.name, got, err, tt.want)
		}
	}
}

// TestEditCaps reads the capabilities the edit shapes depend on.
func TestEditCaps(t *testing.T) {
	tests := []struct {
		name string
		ws   map[string]any
		want editCaps
	}{
		{"none", nil, editCaps{}},
		{"changes only", map[string]any{"applyEdit": true}, editCaps{}},
		{"document changes", map[string]any{"workspaceEdit": map[string]any{"documentChanges": true}}, editCaps{documentChanges: true}},
		{"vs code", map[string]any{"workspaceEdit": map[string]any{"documentChanges": true,
			"resourceOperations": []string{"create", "rename", "delete"}, "changeAnnotationSupport": map[string]any{"groupsOnLabel": true}}},
			editCaps{true, true, true}},
		{"create needs document changes", map[string]any{"workspaceEdit": map[string]any{"resourceOperations": []string{"create"},
			"changeAnnotationSupport": map[string]any{}}}, editCaps{}},
	}
	for _, tt := range tests {
		srv := New(Config{}, nil)
		c := newClientFor(t, srv)
		caps := map[string]any{}
		if tt.ws != nil {
			caps["workspace"] = tt.ws
		}
		c.initialize(caps, nil)
		if got := srv.editCaps(); got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}
