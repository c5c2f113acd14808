package server

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"go.lsp.dev/protocol"

	"github.com/codingplan/codingplan/lsp/internal/complete"
	"github.com/codingplan/codingplan/lsp/internal/document"
	"github.com/codingplan/codingplan/lsp/internal/lspx"
)

// Code actions. Listing them never calls the model: each offered action carries data naming
// the document version, range and kind, and the model runs when the client resolves the
// action (codeAction/resolve) or, for clients that do not resolve, when it executes the
// codingplan.runAction command the action carries instead.

// actionSpec describes one code action kind.
type actionSpec struct {
	title       string
	instruction string // for the backend; Rewrite's comes from the user
	mode        actionMode
}

type actionMode int

const (
	modeReplace     actionMode = iota // the output replaces the selection (as a minimal edit)
	modeInsertAfter                   // the output goes after the selection
	modeShow                          // the output is prose shown to the user
)

var actionSpecs = map[string]actionSpec{
	lspx.KindFix: {"codingplan: Fix", "Fix the problems the diagnostics describe in the selected code. " +
		"Reply with the corrected code only, changing nothing else.", modeReplace},
	lspx.KindDocument: {"codingplan: Add documentation", "Add documentation comments to the selected code, " +
		"in the style usual for its language. Reply with the selected code and its comments only; do not change the code.", modeReplace},
	lspx.KindExplain: {"codingplan: Explain", "Explain briefly what the selected code does, for a developer reading it. " +
		"Reply in plain text, without repeating the code.", modeShow},
	lspx.KindTests: {"codingplan: Write tests", "Write unit tests for the selected code, with the usual test framework " +
		"of its language. Reply with the test code only.", modeInsertAfter},
	lspx.KindSimplify: {"codingplan: Simplify", "Simplify the selected code without changing what it does. " +
		"Reply with the simplified code only.", modeReplace},
	lspx.KindRewrite: {"codingplan: Rewrite…", "", modeReplace},
}

// rewriteSuffix follows the user's instruction for Rewrite.
const rewriteSuffix = "\n\nReply with the rewritten code only."

// actionData is the data an offered code action carries to codeAction/resolve.
type actionData struct {
	URI         string         `json:"uri"`
	Version     int32          `json:"version"`
	Range       protocol.Range `json:"range"`
	Kind        string         `json:"kind"`
	Diagnostics []string       `json:"diagnostics,omitempty"`
}

func (s *Server) prepareCodeAction(_ context.Context, raw json.RawMessage) (runFunc, error) {
	const method = "textDocument/codeAction"
	var p protocol.CodeActionParams
	if err := decodeParams(method, raw, &p); err != nil {
		return nil, err
	}
	uri := string(p.TextDocument.URI)
	doc := s.docs.Get(uri)
	if doc == nil {
		return nil, invalidParams("%s: document is not open: %s", method, clip(uri))
	}
	settings, enc, _ := s.snapshot()
	start, end, err := doc.Range(enc, p.Range)
	if err != nil {
		return nil, invalidParams("%s: %v", method, err)
	}
	actions := []lspx.CodeAction{}
	if s.cfg.Backend == nil || complete.Ignored(settings.Ignore, s.relPath(uri)) {
		return func(context.Context) (any, error) { return actions, nil }, nil
	}
	resolve := s.clientResolves()
	offer := func(kind string, r protocol.Range, diags []protocol.Diagnostic) {
		if !kindWanted(kind, p.Context.Only) {
			return
		}
		a := lspx.CodeAction{Title: actionSpecs[kind].title, Kind: protocol.CodeActionKind(kind), Diagnostics: diags}
		switch {
		case kind == lspx.KindRewrite:
			// The instruction comes from the user: the editor plugin asks for it when it
			// runs this command (a client without a plugin gets an error saying so).
			a.Command = &protocol.Command{Title: a.Title, Command: lspx.CommandRewrite,
				Arguments: []any{lspx.RewriteArgs{URI: uri, Range: r}}}
		case resolve:
			a.Data, _ = json.Marshal(actionData{URI: uri, Version: doc.Version, Range: r, Kind: kind, Diagnostics: diagnosticLines(diags)})
		default:
			a.Command = &protocol.Command{Title: a.Title, Command: lspx.CommandRunAction,
				Arguments: []any{lspx.RunActionArgs{URI: uri, Range: r, Kind: kind}}}
		}
		actions = append(actions, a)
	}
	if len(p.Context.Diagnostics) > 0 {
		fs, fe := start, end
		for _, d := range p.Context.Diagnostics {
			if ds, de, err := doc.Range(enc, d.Range); err == nil {
				fs, fe = min(fs, ds), max(fe, de)
			}
		}
		fs, fe = doc.LineStart(fs), doc.LineEnd(fe)
		offer(lspx.KindFix, doc.RangeOf(enc, fs, fe), p.Context.Diagnostics)
	}
	if start < end {
		for _, kind := range []string{lspx.KindDocument, lspx.KindExplain, lspx.KindTests, lspx.KindSimplify, lspx.KindRewrite} {
			offer(kind, p.Range, nil)
		}
	}
	return func(context.Context) (any, error) { return actions, nil }, nil
}

// kindWanted applies codeAction's context.only: kinds are hierarchical, so "refactor" asks
// for "refactor.rewrite.codingplan.simplify" too.
func kindWanted(kind string, only []protocol.CodeActionKind) bool {
	if len(only) == 0 {
		return true
	}
	return slices.ContainsFunc(only, func(o protocol.CodeActionKind) bool {
		return kind == string(o) || strings.HasPrefix(kind, string(o)+".")
	})
}

// clientResolves reports whether the client resolves code actions lazily (any property will
// do: the server applies the result itself).
func (s *Server) clientResolves() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	td := s.caps.TextDocument
	return td != nil && td.CodeAction != nil && td.CodeAction.ResolveSupport != nil
}

// diagnosticLines formats diagnostics for the model, one line each.
func diagnosticLines(diags []protocol.Diagnostic) []string {
	var out []string
	for _, d := range diags {
		sev := map[protocol.DiagnosticSeverity]string{1: "error", 2: "warning", 3: "info", 4: "hint"}[d.Severity]
		line := fmt.Sprintf("line %d", d.Range.Start.Line+1)
		if sev != "" {
			line += " " + sev
		}
		if d.Source != "" {
			line += " (" + d.Source + ")"
		}
		out = append(out, line+": "+d.Message)
	}
	return out
}

// prepareResolve handles codeAction/resolve: it runs the action's model request and applies
// the result itself (workspace/applyEdit), then returns the action with nothing left to do.
func (s *Server) prepareResolve(_ context.Context, raw json.RawMessage) (runFunc, error) {
	const method = "codeAction/resolve"
	var a lspx.CodeAction
	if err := decodeParams(method, raw, &a); err != nil {
		return nil, err
	}
	var d actionData
	if len(a.Data) == 0 || json.Unmarshal(a.Data, &d) != nil || d.URI == "" {
		return nil, invalidParams("%s: the code action has no codingplan data", method)
	}
	spec, ok := actionSpecs[d.Kind]
	if !ok || d.Kind == lspx.KindRewrite {
		return nil, invalidParams("%s: unknown code action kind %q", method, clip(d.Kind))
	}
	doc := s.docs.Get(d.URI)
	if doc == nil {
		return nil, invalidParams("%s: document is not open: %s", method, clip(d.URI))
	}
	_, enc, _ := s.snapshot()
	run := actionRun{doc: doc, kind: d.Kind, spec: spec, diagnostics: d.Diagnostics}
	stale := doc.Version != d.Version
	if !stale {
		var err error
		if run.start, run.end, err = doc.Range(enc, d.Range); err != nil {
			return nil, invalidParams("%s: %v", method, err)
		}
	}
	return func(ctx context.Context) (any, error) {
		done := lspx.CodeAction{Title: a.Title, Kind: a.Kind, Diagnostics: a.Diagnostics}
		if stale {
			s.showMessage(ctx, protocol.MessageTypeWarning, fmt.Sprintf(
				"%s: the document changed since the action was offered; nothing was run. Try again.", spec.title))
			return done, nil
		}
		if err := s.runAction(ctx, run); err != nil {
			return nil, err
		}
		return done, nil
	}, nil
}

// actionTarget resolves a command's document and range; an empty range means its whole line.
func (s *Server) actionTarget(method, uri string, r protocol.Range) (*document.Doc, int, int, error) {
	doc := s.docs.Get(uri)
	if doc == nil {
		return nil, 0, 0, invalidParams("%s: document is not open: %s", method, clip(uri))
	}
	_, enc, _ := s.snapshot()
	start, end, err := doc.Range(enc, r)
	if err != nil {
		return nil, 0, 0, invalidParams("%s: %v", method, err)
	}
	if start == end {
		start, end = doc.LineStart(start), doc.LineEnd(end)
	}
	return doc, start, end, nil
}
