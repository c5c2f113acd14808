package server

import (
	"context"
	"encoding/json"
	wire "github.com/codingplan/codingplan/shared"
	"slices"
	"strconv"
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
	var p protocol.InitializeParams
	if len(raw) > 0 {
		if err := s.decodeLenient(raw, &p); err != nil {
			return nil, invalidParams("initialize: invalid params: %s", jsonProblem(raw, err))
		}
	}
	enc := negotiateEncoding(p.Capabilities.General)
	folders := initialFolders(p)
	settings, problem := config.Load(s.cfg.Env, json.RawMessage(p.InitializationOptions))

	s.mu.Lock()
	s.state = stateRunning
	s.enc = enc
	s.caps = p.Capabilities
	s.clientName = p.ClientInfo.Name
	s.folders = folders
	s.initOpts = json.RawMessage(p.InitializationOptions)
	s.mu.Unlock()
	s.applySettings(ctx, settings, problem)
	s.startBackend(ctx)

	client, version := "unknown", ""
	if p.ClientInfo.Name != "" {
		client = p.ClientInfo.Name
		version, _ = p.ClientInfo.Version.Get()
	}
	s.log.Info("initialize", "client", wire.Clip(client, 32), "clientVersion", wire.Clip(version, 32), "positionEncoding", enc.Kind(),
		"folders", len(folders), "inlineCompletion", s.clientHasInline())

	return &protocol.InitializeResult{
		Capabilities: s.capabilities(enc),
		ServerInfo:   protocol.ServerInfo{Name: s.cfg.Name, Version: protocol.NewOptional(s.cfg.Version)},
	}, nil
}

// decodeLenient decodes initialize's params: a member of an unexpected shape is dropped, with a
// warning, and decoding goes on, so a client is not refused for a capability this server does
// not read right. Params that are not an object are refused.
func (s *Server) decodeLenient(raw json.RawMessage, p *protocol.InitializeParams) error {
	err := protocol.Unmarshal(raw, p)
	for range 16 {
		if err == nil {
			return nil
		}
		m := decodeErr.FindStringSubmatch(err.Error())
		if m == nil {
			return err
		}
		off, _ := strconv.ParseInt(m[2], 10, 64)
		ptr, _ := valueAt(raw, off)
		var tree any
		if ptr == "" || json.Unmarshal(raw, &tree) != nil || !dropMember(tree, ptr) {
			return err
		}
		s.log.Warn("initialize: a member has an unexpected shape, ignored", "member", ptr)
		raw, _ = json.Marshal(tree)
		*p = protocol.InitializeParams{}
		err = protocol.Unmarshal(raw, p)
	}
	return err
}

// dropMember deletes the member at a JSON pointer ("/a/b/0/c") from tree; it reports whether
// there was one.
func dropMember(tree any, pointer string) bool {
	parts := strings.Split(strings.TrimPrefix(pointer, "/"), "/")
	for i, part := range parts {
		part = strings.NewReplacer("~1", "/", "~0", "~").Replace(part)
		last := i == len(parts)-1
		switch node := tree.(type) {
		case map[string]any:
			if _, ok := node[part]; !ok {
				return false
			}
			if last {
				delete(node, part)
				return true
			}
			tree = node[part]
		case []any:
			n, err := strconv.Atoi(part)
			if err != nil || n < 0 || n >= len(node) {
				return false
			}
			if last {
				node[n] = nil
				return true
			}
			tree = node[n]
		default:
			return false
		}
	}
	return false
}

func (s *Server) capabilities(enc document.Encoding) protocol.ServerCapabilities {
	yes, no := true, false
	change := protocol.TextDocumentSyncKindIncremental
	return protocol.ServerCapabilities{
		PositionEncoding:         protocol.PositionEncodingKind(enc.Kind()),
		TextDocumentSync:         &protocol.TextDocumentSyncOptions{OpenClose: &yes, Change: &change},
		InlineCompletionProvider: &protocol.InlineCompletionOptions{},
		CompletionProvider:       &protocol.CompletionOptions{TriggerCharacters: completionTriggers, ResolveProvider: &no},
		CodeActionProvider:       &protocol.CodeActionOptions{CodeActionKinds: actionKinds(), ResolveProvider: &yes},
		ExecuteCommandProvider:   protocol.ExecuteCommandOptions{Commands: lspx.Commands},
		Workspace: &protocol.WorkspaceOptions{WorkspaceFolders: &protocol.WorkspaceFoldersServerCapabilities{
			Supported: &yes, ChangeNotifications: protocol.Boolean(true),
		}},
	}
}

// actionKinds lists the code action kinds offered.
func actionKinds() []protocol.CodeActionKind {
	out := make([]protocol.CodeActionKind, len(lspx.ActionKinds))
	for i, k := range lspx.ActionKinds {
		out[i] = protocol.CodeActionKind(k)
	}
	return out
}

// negotiateEncoding picks the position encoding. The server may choose any the client
// offers; it prefers utf-8 (no conversion: offsets are bytes), then utf-16, then utf-32, and
// falls back to utf-16, which every client supports, when the client offers none it knows.
func negotiateEncoding(g *protocol.GeneralClientCapabilities) document.Encoding {
	if g == nil {
		return document.UTF16
	}
	for _, want := range []protocol.PositionEncodingKind{protocol.PositionEncodingKindUTF8, protocol.PositionEncodingKindUTF16, protocol.PositionEncodingKindUTF32} {
		if slices.Contains(g.PositionEncodings, want) {
			e, _ := document.ParseEncoding(string(want))
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
	s.goBackground("signin", s.keeper.Run)
	s.goBackground("backend", func(ctx context.Context) {
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
