package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	wire "github.com/codingplan/codingplan/shared"
	"slices"
	"strings"

	"go.lsp.dev/protocol"

	"github.com/codingplan/codingplan/lsp/internal/complete"
	"github.com/codingplan/codingplan/lsp/internal/document"
	"github.com/codingplan/codingplan/lsp/internal/lspx"
)

// Code actions. Neither listing nor resolving them calls the model: every offered action
// carries the command that runs it (codingplan.runAction, or codingplan.rewrite, whose
// instruction the editor plugin asks the user for), naming the document version, the range,
// the kind and, for Fix, the diagnostics. The model runs when the client executes that command,
// which it does when the user picks the action. codeAction/resolve answers with the action as
// it is: VS Code resolves the action focused in its menu (to preview its edit), so a model run
// there would start, and apply, while the user merely moves through the menu.

// actionSpec describes one code action kind.
type actionSpec struct {
	title       string
	instruction string // for the backend; Rewrite's comes from the user
	mode        actionMode
	doing       string // what progress says is being done: "writing tests"
}

type actionMode int

const (
	modeReplace     actionMode = iota // the output replaces the selection (as a minimal edit)
	modeInsertAfter                   // the output goes after the selection
	modeShow                          // the output is Markdown shown to the user
	modeTestFile                      // the output goes in the test file (testFileFor), else after the selection
)

var actionSpecs = map[string]actionSpec{
	lspx.KindFix: {"codingplan: Fix", "Fix the problems the diagnostics describe in the selected code. " +
		"Reply with the corrected code only, changing nothing else.", modeReplace, "fixing"},
	lspx.KindDocument: {"codingplan: Add documentation", "Add documentation comments to the selected code, " +
		"in the style usual for its language. Reply with the selected code and its comments only; do not change the code.",
		modeReplace, "writing documentation"},
	lspx.KindExplain: {"codingplan: Explain", "Explain briefly what the selected code does, for a developer reading it. " +
		"Reply in Markdown, without repeating the code.", modeShow, "explaining"},
	lspx.KindTests: {"codingplan: Write tests", "Write unit tests for the selected code, with the usual test framework " +
		"of its language. Reply with the test code only.", modeTestFile, "writing tests"},
	lspx.KindSimplify: {"codingplan: Simplify", "Simplify the selected code without changing what it does. " +
		"Reply with the simplified code only.", modeReplace, "simplifying"},
	lspx.KindRewrite: {"codingplan: Rewrite…", "", modeReplace, "rewriting"},
}

// rewriteSuffix follows the user's instruction for Rewrite.
const rewriteSuffix = "\n\nReply with the rewritten code only."

func (s *Server) prepareCodeAction(_ context.Context, raw json.RawMessage) (runFunc, error) {
	const method = "textDocument/codeAction"
	var p protocol.CodeActionParams
	if err := decodeParams(method, raw, &p); err != nil {
		return nil, err
	}
	uri := string(p.TextDocument.URI)
	doc := s.docs.Get(uri)
	if doc == nil {
		return nil, invalidParams("%s: document is not open: %s", method, wire.Clip(uri, 32))
	}
	settings, enc, _ := s.snapshot()
	start, end, err := doc.Range(enc, p.Range)
	if err != nil {
		return nil, invalidParams("%s: %v", method, err)
	}
	actions := []protocol.CodeAction{}
	if s.cfg.Backend == nil || complete.Ignored(settings.Ignore, s.relPath(uri)) ||
		!serves(s.cfg.Backend.Status(), settings.Model, wire.OpEdit) { // the status says why
		return func(context.Context) (any, error) { return actions, nil }, nil
	}
	version := doc.Version
	offer := func(kind string, r protocol.Range, diags []protocol.Diagnostic) {
		if !kindWanted(kind, p.Context.Only) {
			return
		}
		k := protocol.CodeActionKind(kind)
		a := protocol.CodeAction{Title: actionSpecs[kind].title, Kind: &k, Diagnostics: diags}
		if kind == lspx.KindRewrite {
			// The instruction comes from the user: the editor plugin asks for it when it runs
			// this command (a client without a plugin gets an error saying so).
			a.Command = protocol.Command{Title: a.Title, Command: lspx.CommandRewrite,
				Arguments: lspArgs(lspx.RewriteArgs{URI: uri, Range: r, Version: &version})}
		} else {
			a.Command = protocol.Command{Title: a.Title, Command: lspx.CommandRunAction,
				Arguments: lspArgs(lspx.RunActionArgs{URI: uri, Range: r, Kind: kind, Version: &version, Diagnostics: diagnosticLines(diags)})}
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

// diagnosticLines formats diagnostics for the model, one line each.
func diagnosticLines(diags []protocol.Diagnostic) []string {
	var out []string
	for _, d := range diags {
		sev := map[protocol.DiagnosticSeverity]string{1: "error", 2: "warning", 3: "info", 4: "hint"}[d.Severity]
		line := fmt.Sprintf("line %d", d.Range.Start.Line+1)
		if sev != "" {
			line += " " + sev
		}
		if src, _ := d.Source.Get(); src != "" {
			line += " (" + src + ")"
		}
		out = append(out, line+": "+tooltipText(d.Message))
	}
	return out
}

// prepareResolve handles codeAction/resolve: the action is complete as listed (its command
// does the work), so it comes back as it is, whoever offered it.
func (s *Server) prepareResolve(_ context.Context, raw json.RawMessage) (runFunc, error) {
	var a json.RawMessage
	if err := decodeParams("codeAction/resolve", raw, &a); err != nil {
		return nil, err
	}
	return func(context.Context) (any, error) { return a, nil }, nil
}

// errStale is a command's range that refers to an older version of its document.
var errStale = errors.New("the document changed since the action was offered")

// actionTarget resolves a command's document and range; an empty range means its whole line.
// With version set, a later version of the document gives errStale.
func (s *Server) actionTarget(method, uri string, r protocol.Range, version *int32) (*document.Doc, int, int, error) {
	doc := s.docs.Get(uri)
	if doc == nil {
		return nil, 0, 0, invalidParams("%s: document is not open: %s", method, wire.Clip(uri, 32))
	}
	if version != nil && *version != doc.Version {
		return doc, 0, 0, errStale
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
