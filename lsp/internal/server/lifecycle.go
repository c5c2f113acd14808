package server

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"go.lsp.dev/jsonrpc2"
	"go.lsp.dev/protocol"

	"github.com/codingplan/codingplan/lsp/internal/config"
	"github.com/codingplan/codingplan/lsp/internal/document"
	"github.com/codingplan/codingplan/lsp/internal/lspx"
)

// completionTriggers are the completion trigger characters: few, since typing an identifier
// triggers completion anyway and every extra character is a request.
var completionTriggers = []string{".", "("}

// initialize handles the initialize request on the read loop.
func (s *Server) initialize(ctx context.Context, raw json.RawMessage) (any, error) {
	s.mu.Lock()
	state := s.state
	s.mu.Unlock()
	if state != stateNew {
		return nil, invalidRequest("initialize: the server is already initialized")
	}
	var p lspx.InitializeParams
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &p); err != nil {
			// A field of an unexpected type is skipped (json goes on decoding the rest): a
			// client is not refused for a capability this server does not read right.
			var te *json.UnmarshalTypeError
			if !errors.As(err, &te) {
				return nil, invalidParams("initialize: invalid params: %s", jsonProblem(err))
			}
			s.log.Warn("initialize: a field has an unexpected type, ignored", "field", te.Field)
		}
	}
	enc := negotiateEncoding(p.Capabilities.General)
	folders := initialFolders(p)
	settings, problem := config.Load(s.cfg.Env, p.InitializationOptions)

	s.mu.Lock()
	s.state = stateRunning
	s.enc = enc
	s.caps = p.Capabilities
	if p.ClientInfo != nil {
		s.clientName = p.ClientInfo.Name
	}
	s.folders = folders
	s.initOpts = p.InitializationOptions
	s.mu.Unlock()
	s.applySettings(ctx, settings, problem)
	s.startBackend(ctx)

	client, version := "unknown", ""
	if p.ClientInfo != nil {
		client, version = p.ClientInfo.Name, p.ClientInfo.Version
	}
	s.log.Info("initialize", "client", clip(client), "clientVersion", clip(version), "positionEncoding", enc.Kind(),
		"folders", len(folders), "inlineCompletion", s.clientHasInline())

	return lspx.InitializeResult{
		Capabilities: s.capabilities(enc),
		ServerInfo:   &lspx.ServerInfo{Name: s.cfg.Name, Version: s.cfg.Version},
	}, nil
}

func (s *Server) capabilities(enc document.Encoding) lspx.ServerCapabilities {
	return lspx.ServerCapabilities{
		PositionEncoding:         enc.Kind(),
		TextDocumentSync:         lspx.TextDocumentSyncOptions{OpenClose: true, Change: protocol.TextDocumentSyncKindIncremental},
		InlineCompletionProvider: &lspx.InlineCompletionOptions{},
		CompletionProvider:       &lspx.CompletionOptions{TriggerCharacters: completionTriggers},
		CodeActionProvider:       &lspx.CodeActionOptions{CodeActionKinds: lspx.ActionKinds, ResolveProvider: true},
		ExecuteCommandProvider:   &lspx.ExecuteCommandOptions{Commands: lspx.Commands},
		Workspace: &lspx.ServerWorkspace{WorkspaceFolders: &lspx.WorkspaceFoldersServerCapabilities{
			Supported: true, ChangeNotifications: true,
		}},
	}
}

// negotiateEncoding picks the position encoding. The server may choose any the client
// offers; it prefers utf-8 (no conversion: offsets are bytes), then utf-16, then utf-32, and
// falls back to utf-16, which every client supports, when the client offers none it knows.
func negotiateEncoding(g *lspx.GeneralClientCapabilities) document.Encoding {
	if g == nil {
		return document.UTF16
	}
	for _, want := range []string{lspx.PositionEncodingUTF8, lspx.PositionEncodingUTF16, lspx.PositionEncodingUTF32} {
		if slices.Contains(g.PositionEncodings, want) {
			e, _ := document.ParseEncoding(want)
			return e
		}
	}
	return document.UTF16
}

// initialized handles the initialized notification: the client is ready for the server's
// own requests and notifications.
func (s *Server) initialized(ctx context.Context, _ json.RawMessage) error {
	s.mu.Lock()
	s.initializedSeen = true
	s.mu.Unlock()
	s.pushStatus(ctx, nil)
	s.pullConfiguration(ctx)
	return nil
}

// startBackend runs the backend connection until exit.
func (s *Server) startBackend(ctx context.Context) {
	if s.cfg.Backend == nil {
		return
	}
	s.goBackground(ctx, "backend", func(ctx context.Context) {
		if err := s.cfg.Backend.Run(ctx); err != nil {
			s.log.Error("backend connection stopped", "err", err)
		}
	})
}

// clientHasInline reports whether the client does textDocument/inlineCompletion.
func (s *Server) clientHasInline() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.caps.TextDocument != nil && s.caps.TextDocument.InlineCompletion != nil
}

// clientDebounces reports whether the client waits for typing to pause before asking, so the
// server need not (the automatic debounce setting).
func clientDebounces(name string) bool {
	name = strings.ToLower(name)
	for _, c := range []string{"visual studio code", "vscode", "code-server", "neovim", "nvim", "cursor", "vscodium"} {
		if strings.Contains(name, c) {
			return true
		}
	}
	return false
}

// invalidRequest is the error for a request the server cannot take in its state.
func invalidRequest(msg string) error {
	return jsonrpc2.NewError(jsonrpc2.InvalidRequest, msg)
}
