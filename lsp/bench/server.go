package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Server is a language server process and the client talking to it over its stdio.
type Server struct {
	Name   string
	Proc   *Proc
	Client *Client
	stdin  io.WriteCloser
}

// ServerSpec says how to start a language server.
type ServerSpec struct {
	Name       string   // label in the results
	Path       string   // executable
	Args       []string // arguments
	Env        []string // added to the environment
	StderrPath string   // where its standard error goes
	Options    ClientOptions
}

// StartServer starts the server and its client.
func StartServer(spec ServerSpec) (*Server, error) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	p, err := StartProc(spec.Path, spec.Args, spec.Env, inR, outW, spec.StderrPath)
	if err != nil {
		return nil, err
	}
	// The pipe ends are the process's now (exec copies through them): close ours when it exits
	// so the client's reader sees the end of output.
	go func() {
		<-p.Exited()
		outW.Close()
		inR.Close()
	}()
	return &Server{Name: spec.Name, Proc: p, Client: NewClient(outR, inW, spec.Options), stdin: inW}, nil
}

// Initialize sends initialize with params, then initialized.
func (s *Server) Initialize(ctx context.Context, params map[string]any) (json.RawMessage, error) {
	res, err := s.Client.Call(ctx, "initialize", params)
	if err != nil {
		return nil, fmt.Errorf("%s: initialize: %w", s.Name, err)
	}
	if err := s.Client.Notify("initialized", map[string]any{}); err != nil {
		return nil, fmt.Errorf("%s: initialized: %w", s.Name, err)
	}
	return res.Raw, nil
}

// Close shuts the server down politely (shutdown, exit) within a few seconds, then stops its
// process group whatever happened.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := s.Client.Call(ctx, "shutdown", nil)
	if err == nil {
		_ = s.Client.Notify("exit", nil)
	}
	s.stdin.Close()
	if !s.Proc.WaitExit(2 * time.Second) {
		err = errors.Join(err, fmt.Errorf("%s did not exit after shutdown and exit", s.Name))
	}
	_ = s.Proc.Stop(2 * time.Second)
	<-s.Client.Done()
	return err
}

// InitParams returns initialize params for a client with the given root and
// initializationOptions (may be nil). An inline client declares textDocument.inlineCompletion
// (LSP 3.18); a classic one only textDocument.completion, as editors without inline support do.
func InitParams(rootURI string, inline bool, initOptions any) map[string]any {
	td := map[string]any{
		"synchronization": map[string]any{"dynamicRegistration": false},
		"completion": map[string]any{
			"completionItem": map[string]any{"snippetSupport": false},
		},
	}
	if inline {
		td["inlineCompletion"] = map[string]any{"dynamicRegistration": false}
	}
	p := map[string]any{
		"processId":  nil,
		"clientInfo": map[string]any{"name": "lspbench", "version": "1"},
		"rootUri":    rootURI,
		"workspaceFolders": []map[string]any{
			{"uri": rootURI, "name": "bench"},
		},
		"capabilities": map[string]any{
			"general":      map[string]any{"positionEncodings": []string{"utf-16"}},
			"textDocument": td,
			"workspace":    map[string]any{"configuration": true, "workspaceFolders": true},
			"window":       map[string]any{"workDoneProgress": false},
		},
	}
	if initOptions != nil {
		p["initializationOptions"] = initOptions
	}
	return p
}
