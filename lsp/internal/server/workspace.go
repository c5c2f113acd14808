package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"path"
	"slices"
	"strings"

	"go.lsp.dev/protocol"

	"github.com/codingplan/codingplan/lsp/internal/config"
	"github.com/codingplan/codingplan/lsp/internal/lspx"
	"github.com/codingplan/codingplan/lsp/internal/remote"
)

// Settings: initializationOptions are the first layer; the latest configuration the editor
// sent (workspace/didChangeConfiguration) or gave when asked (workspace/configuration) is the
// second. The environment fills the token and backend URL where both say nothing.

// applySettings makes next the session's settings and tells the backend connection.
// problem, when set, lists values that could not be used: the user is told.
func (s *Server) applySettings(ctx context.Context, next config.Settings, problem error) {
	s.mu.Lock()
	prev := s.settings
	enabledChanged := false
	if !next.Enable.Equal(prev.Enable) {
		enabledChanged = s.enabled != next.Enable.Any()
		s.enabled = next.Enable.Any()
		s.forced = false
	}
	if next.Token != prev.Token {
		s.signedIn = nil // a new token in the settings replaces a sign-in or sign-out
		s.preferManaged = false
	}
	if errors.Is(problem, config.ErrBackendURL) {
		// Keep the URL in use (none before the first valid one), never the default's or an
		// older layer's: the token must go only to a backend the user chose.
		next.BackendURL = prev.BackendURL
	}
	s.settings = next
	token := s.tokenLocked()
	client := s.clientName
	s.mu.Unlock()

	s.trace.Store(next.Trace)
	if b := s.cfg.Backend; b != nil {
		b.SetTransport(remote.Transport{AllowInsecure: next.AllowInsecureBackend, CAFile: next.CAFile})
		b.SetURL(next.BackendURL)
		b.SetToken(token)
	}
	s.configureSignIn(ctx, next, client)
	if problem != nil {
		s.log.Warn("settings not used", "problem", problem)
		s.notify(ctx, "window/showMessage", protocol.ShowMessageParams{
			Type: protocol.MessageTypeWarning, Message: "codingplan: " + problem.Error(),
		})
	}
	if enabledChanged || next.Model != prev.Model {
		s.pushStatus(ctx, nil)
	}
}

// applyLayer applies the editor's latest configuration, raw, over initializationOptions.
func (s *Server) applyLayer(ctx context.Context, raw json.RawMessage) {
	s.mu.Lock()
	init := s.initOpts
	s.mu.Unlock()
	next, problem := config.Load(s.cfg.Env, init, raw)
	s.applySettings(ctx, next, problem)
}

// didChangeConfiguration applies settings pushed by the client; when the notification carries
// none of ours (VS Code's pull model sends null), the server asks with workspace/configuration.
func (s *Server) didChangeConfiguration(ctx context.Context, raw json.RawMessage) error {
	var p struct {
		Settings json.RawMessage `json:"settings"`
	}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &p); err != nil {
			return invalidParams("workspace/didChangeConfiguration: invalid params: %s", jsonProblem(raw, err))
		}
	}
	if !hasOurSettings(p.Settings) {
		s.pullConfiguration(ctx)
		return nil
	}
	s.mu.Lock()
	s.configSeq++ // an older pull's answer must not undo this
	s.mu.Unlock()
	s.applyLayer(ctx, p.Settings)
	return nil
}

// hasOurSettings reports whether raw holds a codingplan section or one of its keys.
func hasOurSettings(raw json.RawMessage) bool {
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		return false
	}
	if _, ok := obj[config.Section]; ok {
		return true
	}
	keys := config.Keys()
	for k := range obj {
		if slices.Contains(keys, k) {
			return true
		}
	}
	return false
}

// pullConfiguration asks the client for the codingplan section, when it can answer, from a
// goroutine: the read loop must never wait for the client.
func (s *Server) pullConfiguration(ctx context.Context) {
	s.mu.Lock()
	ok := s.caps.Workspace != nil && s.caps.Workspace.Configuration != nil && *s.caps.Workspace.Configuration
	s.configSeq++
	seq := s.configSeq
	s.mu.Unlock()
	if !ok {
		return
	}
	s.goBackground("workspace/configuration", func(ctx context.Context) {
		var res []json.RawMessage
		section := config.Section
		params := &protocol.ConfigurationParams{Items: []protocol.ConfigurationItem{{Section: &section}}}
		if err := s.call(ctx, "workspace/configuration", params, &res); err != nil {
			s.log.Debug("workspace/configuration failed", "err", err)
			return
		}
		s.mu.Lock()
		stale := seq != s.configSeq
		s.mu.Unlock()
		if stale || len(res) == 0 {
			return
		}
		s.applyLayer(ctx, res[0])
	})
}

// pushStatus sends codingplan/status once the client is initialized. st is the backend's new
// status, or nil to ask for it.
func (s *Server) pushStatus(ctx context.Context, st *remote.Status) {
	s.mu.Lock()
	ready := s.state == stateRunning && s.initializedSeen
	s.mu.Unlock()
	if !ready {
		return
	}
	s.notify(ctx, lspx.MethodStatus, s.status(st))
}

// status is the codingplan/status object.
func (s *Server) status(st *remote.Status) lspx.Status {
	if st == nil {
		cur := remote.Status{State: lspx.StateError, Message: "no backend connection is configured"}
		if s.cfg.Backend != nil {
			cur = s.cfg.Backend.Status()
		}
		st = &cur
	}
	s.mu.Lock()
	enabled, model := s.enabled, s.settings.Model
	s.mu.Unlock()
	out := lspx.Status{State: st.State, Message: st.Message, Reason: st.Reason, RetryAfterMS: st.RetryAfterMS, Enabled: enabled}
	if st.Plan != nil {
		out.Plan = &lspx.PlanStatus{Name: st.Plan.Name, Concurrency: st.Plan.Concurrency, InUse: st.Plan.InUse}
	}
	out = withModel(out, *st, model)
	if !enabled {
		out.State = lspx.StateDisabled
		out.Message = "completions are off (codingplan.enable turns them on)"
		out.RetryAfterMS = 0
		out.Reason = ""
	}
	return out
}

// folder is a workspace root: its URI and, for file URIs, its slash-separated path.
type folder struct {
	uri, path string
}

func initialFolders(p protocol.InitializeParams) []folder {
	var out []folder
	folders, _ := p.WorkspaceFolders.Get()
	for _, f := range folders {
		out = append(out, folder{uri: string(f.URI), path: uriPath(string(f.URI))})
	}
	if len(out) == 0 && p.RootURI != nil && *p.RootURI != "" {
		out = append(out, folder{uri: string(*p.RootURI), path: uriPath(string(*p.RootURI))})
	}
	if root, _ := p.RootPath.Get(); len(out) == 0 && root != "" {
		out = append(out, folder{uri: "file://" + root, path: strings.TrimRight(root, "/")})
	}
	return out
}

func (s *Server) didChangeWorkspaceFolders(_ context.Context, raw json.RawMessage) error {
	var p protocol.DidChangeWorkspaceFoldersParams
	if err := decodeParams("workspace/didChangeWorkspaceFolders", raw, &p); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.folders = slices.DeleteFunc(s.folders, func(f folder) bool {
		return slices.ContainsFunc(p.Event.Removed, func(r protocol.WorkspaceFolder) bool { return string(r.URI) == f.uri })
	})
	for _, f := range p.Event.Added {
		s.folders = append(s.folders, folder{uri: string(f.URI), path: uriPath(string(f.URI))})
	}
	return nil
}

// relPath returns the document's path relative to the workspace folder that holds it (the
// deepest, with several roots), slash-separated; for a document outside every folder, its
// file name only, so no absolute path leaves the machine.
func (s *Server) relPath(uri string) string {
	p := uriPath(uri)
	s.mu.Lock()
	defer s.mu.Unlock()
	best := ""
	for _, f := range s.folders {
		// p starts with f.path and a slash (without building f.path+"/": this runs for every
		// document of every completion request)
		if f.path != "" && len(f.path) > len(best) && len(p) > len(f.path) && p[len(f.path)] == '/' && strings.HasPrefix(p, f.path) {
			best = f.path
		}
	}
	if best != "" {
		return p[len(best)+1:]
	}
	return path.Base(p)
}

// uriPath returns the path a URI names: a file URI's path without a trailing slash, or the
// last part of another URI (untitled:Untitled-1 gives Untitled-1).
func uriPath(uri string) string {
	// The common case, a plain local file URI, without parsing: url.Parse would give the same.
	if rest, ok := strings.CutPrefix(uri, "file:///"); ok && !strings.ContainsAny(rest, "%?#") {
		return strings.TrimRight(uri[len("file://"):], "/")
	}
	u, err := url.Parse(uri)
	if err != nil {
		return path.Base(uri)
	}
	if u.Scheme == "file" {
		return strings.TrimRight(u.Path, "/")
	}
	if u.Opaque != "" {
		return path.Base(u.Opaque)
	}
	return path.Base(u.Path)
}
