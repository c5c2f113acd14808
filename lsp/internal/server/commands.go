package server

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"go.lsp.dev/protocol"

	"github.com/codingplan/codingplan/lsp/internal/lspx"
	wire "github.com/codingplan/codingplan/shared"
)

// prepareCommand handles workspace/executeCommand.
func (s *Server) prepareCommand(_ context.Context, raw json.RawMessage) (runFunc, error) {
	const method = "workspace/executeCommand"
	var p protocol.ExecuteCommandParams
	if err := decodeParams(method, raw, &p); err != nil {
		return nil, err
	}
	arg := func(v any, shape string) error {
		if len(p.Arguments) == 0 {
			return invalidParams("%s needs an argument: %s", p.Command, shape)
		}
		if err := protocol.Unmarshal(p.Arguments[0], v); err != nil {
			return invalidParams("%s: the argument must be %s (%s)", p.Command, shape, jsonProblem(p.Arguments[0], err))
		}
		return nil
	}
	done := func(v any) (runFunc, error) { return func(context.Context) (any, error) { return v, nil }, nil }

	switch p.Command {
	case lspx.CommandStatus:
		return func(context.Context) (any, error) { return s.status(nil), nil }, nil

	case lspx.CommandSignIn:
		if len(p.Arguments) == 0 || string(p.Arguments[0]) == "null" {
			return s.signInRun(p.WorkDoneToken), nil // the device sign-in
		}
		var token string
		if err := arg(&token, `a token string, ["<token>"], or nothing for the device sign-in`); err != nil {
			return nil, err
		}
		if token = strings.TrimSpace(token); token == "" {
			return nil, invalidParams("%s: the token is empty", p.Command)
		}
		s.signIn(wire.Secret(token))
		return func(context.Context) (any, error) { return s.status(nil), nil }, nil

	case lspx.CommandRetry:
		if s.cfg.Backend != nil {
			s.cfg.Backend.Retry()
		}
		return func(context.Context) (any, error) { return s.status(nil), nil }, nil

	case lspx.CommandSignOut:
		return s.signOutRun(), nil

	case lspx.CommandEnable, lspx.CommandDisable, lspx.CommandToggle:
		s.mu.Lock()
		switch p.Command {
		case lspx.CommandEnable:
			s.enabled = true
		case lspx.CommandDisable:
			s.enabled = false
		default:
			s.enabled = !s.enabled
		}
		// Turned on by the user: languages the setting leaves to "*" are on, even when "*"
		// is false; a language it names false stays off.
		s.forced = s.enabled
		enabled := s.enabled
		s.mu.Unlock()
		s.pushStatus(context.Background(), nil)
		return done(lspx.EnabledResult{Enabled: enabled})

	case lspx.CommandAcceptCompletion:
		var a lspx.AcceptCompletionArgs
		if err := arg(&a, `{"uri": string, "id": string}`); err != nil {
			return nil, err
		}
		if f := s.feedback(); f != nil {
			f.Accepted(a.ID)
		}
		return done(nil)

	case lspx.CommandRewrite:
		var a lspx.RewriteArgs
		if err := arg(&a, `{"uri": string, "range": Range, "instruction": string}`); err != nil {
			return nil, err
		}
		return s.commandAction(p.Command, lspx.RunActionArgs{URI: a.URI, Range: a.Range, Kind: lspx.KindRewrite,
			Instruction: a.Instruction, Version: a.Version}, p.WorkDoneToken)

	case lspx.CommandRunAction:
		var a lspx.RunActionArgs
		if err := arg(&a, `{"uri": string, "range": Range, "kind": string}`); err != nil {
			return nil, err
		}
		return s.commandAction(p.Command, a, p.WorkDoneToken)
	}
	return nil, invalidParams("%s: unknown command %q", method, wire.Clip(p.Command, 32))
}

// commandAction prepares a code action run by command.
func (s *Server) commandAction(command string, a lspx.RunActionArgs, token protocol.ProgressToken) (runFunc, error) {
	spec, ok := actionSpecs[a.Kind]
	if !ok {
		return nil, invalidParams("%s: unknown code action kind %q", command, wire.Clip(a.Kind, 32))
	}
	if a.Kind == lspx.KindRewrite && strings.TrimSpace(a.Instruction) == "" {
		return nil, invalidParams("%s needs an instruction: the editor plugin asks the user for one; "+
			`call it with [{"uri", "range", "instruction"}]`, command)
	}
	if a.URI == "" {
		return nil, invalidParams("%s: uri is required", command)
	}
	doc, start, end, err := s.actionTarget(command, a.URI, a.Range, a.Version)
	if errors.Is(err, errStale) {
		return func(ctx context.Context) (any, error) {
			s.showMessage(ctx, protocol.MessageTypeWarning, spec.title+": "+err.Error()+"; nothing was run. Try again.")
			return nil, nil
		}, nil
	}
	if err != nil {
		return nil, err
	}
	run := actionRun{doc: doc, start: start, end: end, kind: a.Kind, spec: spec, instruction: a.Instruction,
		diagnostics: a.Diagnostics, token: token}
	return func(ctx context.Context) (any, error) { return nil, s.runAction(ctx, run) }, nil
}

// signIn sets the token the user gave (empty signs out). It holds until the next sign-in or
// sign-out or a change of the token setting, in memory only.
func (s *Server) signIn(token wire.Secret) {
	s.mu.Lock()
	s.signedIn = &token
	s.toldRefused = ""
	s.mu.Unlock()
	s.applyToken()
}
