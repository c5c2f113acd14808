package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"go.lsp.dev/jsonrpc2"

	"github.com/codingplan/codingplan/lsp/internal/config"
	"github.com/codingplan/codingplan/lsp/internal/document"
	"github.com/codingplan/codingplan/lsp/internal/erase"
	"github.com/codingplan/codingplan/lsp/internal/lspx"
)

// A request is handled in two steps. prepare runs on the read loop, in order with the
// notifications around it: it decodes and checks the params and takes the document snapshot
// the request refers to, so it sees exactly the edits sent before it. The run function it
// returns then runs on the request's own goroutine, with a context that $/cancelRequest ends.
type (
	prepareFunc func(s *Server, ctx context.Context, params json.RawMessage) (runFunc, error)
	runFunc     func(ctx context.Context) (any, error)
	notifyFunc  func(s *Server, ctx context.Context, params json.RawMessage) error
)

// requests and notifications map LSP methods to their handlers; initialize, shutdown, exit
// and $/cancelRequest are handled by handleCall and handleNotification themselves.
var (
	requests      map[string]prepareFunc
	notifications map[string]notifyFunc
)

func init() {
	requests = map[string]prepareFunc{
		lspx.MethodInlineCompletion: (*Server).prepareInline,
		"textDocument/completion":   (*Server).prepareCompletion,
		"textDocument/codeAction":   (*Server).prepareCodeAction,
		"codeAction/resolve":        (*Server).prepareResolve,
		"workspace/executeCommand":  (*Server).prepareCommand,
	}
	notifications = map[string]notifyFunc{
		"initialized":                           (*Server).initialized,
		"textDocument/didOpen":                  (*Server).didOpen,
		"textDocument/didChange":                (*Server).didChange,
		"textDocument/didClose":                 (*Server).didClose,
		"textDocument/didSave":                  func(*Server, context.Context, json.RawMessage) error { return nil },
		"workspace/didChangeConfiguration":      (*Server).didChangeConfiguration,
		"workspace/didChangeWorkspaceFolders":   (*Server).didChangeWorkspaceFolders,
		"window/workDoneProgress/cancel":        (*Server).progressCancel,
		lspx.MethodDidShowCompletion:            (*Server).didShowCompletion,
		lspx.MethodDidPartiallyAcceptCompletion: (*Server).didPartiallyAccept,
	}
}

// errCancelledByClient is the cause of a request context ended by $/cancelRequest.
var errCancelledByClient = errors.New("request cancelled by the client")

// handle handles a call or a notification, on the read loop.
func (s *Server) handle(ctx context.Context, m *rpcMsg) {
	if m.hasID() {
		s.handleCall(ctx, m)
		return
	}
	s.handleNotification(ctx, m)
}

func (s *Server) handleCall(ctx context.Context, c *rpcMsg) {
	start := time.Now()
	method := c.Method
	respond := func(result any, err error) { s.reply(c, start, result, err) }
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("request handler panicked", "method", method, "panic", panicValue(r), "stack", string(debug.Stack()))
			respond(nil, jsonrpc2.NewError(jsonrpc2.InternalError, "internal error in "+method))
		}
	}()

	s.mu.Lock()
	state := s.state
	s.mu.Unlock()
	switch {
	case method == "initialize":
		respond(s.initialize(ctx, c.Params))
		return
	case state == stateNew:
		respond(nil, jsonrpc2.NewError(jsonrpc2.ServerNotInitialized, method+": the server is not initialized yet"))
		return
	case state == stateShutdown:
		respond(nil, jsonrpc2.NewError(jsonrpc2.InvalidRequest, method+": the server is shutting down"))
		return
	case method == "shutdown":
		s.mu.Lock()
		s.state, s.sawShutdown = stateShutdown, true
		s.mu.Unlock()
		respond(nil, nil)
		return
	}
	prepare, ok := requests[method]
	if !ok {
		respond(nil, jsonrpc2.NewError(jsonrpc2.MethodNotFound, "method not found: "+clip(method)))
		return
	}
	run, err := prepare(s, ctx, c.Params)
	c.Params = nil // the run function holds what it needs; a large params object can go
	if err != nil {
		respond(nil, err)
		return
	}

	key := normalizeID(c.ID)
	rctx, cancel := context.WithCancelCause(ctx)
	call := &inflight{cancel: cancel}
	s.mu.Lock()
	s.calls[key] = call
	s.mu.Unlock()
	s.wg.Add(1)
	go erase.Do(func() { // a request's content is erased once freed (see erase)
		defer s.wg.Done()
		defer cancel(nil)
		var result any
		var err error
		func() {
			defer func() {
				if r := recover(); r != nil {
					s.log.Error("request panicked", "method", method, "panic", panicValue(r), "stack", string(debug.Stack()))
					err = jsonrpc2.NewError(jsonrpc2.InternalError, "internal error in "+method)
				}
			}()
			result, err = run(rctx)
		}()
		s.mu.Lock()
		if s.calls[key] == call {
			delete(s.calls, key)
		}
		s.mu.Unlock()
		if errors.Is(context.Cause(rctx), errCancelledByClient) {
			result, err = nil, jsonrpc2.NewError(lspx.RequestCancelled, method+": cancelled")
		}
		respond(result, err)
	})
}

// reply answers a call, mapping err to an LSP error once, here.
func (s *Server) reply(c *rpcMsg, start time.Time, result any, err error) {
	s.mu.Lock()
	conn := s.conn
	s.mu.Unlock()
	var rpcErr *jsonrpc2.Error
	code := 0
	if err != nil {
		rpcErr = rpcError(err)
		code = int(rpcErr.Code)
		result = nil
	}
	if werr := conn.reply(c.ID, result, rpcErr); werr != nil {
		s.log.Debug("reply not sent", "method", c.Method, "err", werr)
	}
	if s.traceMode() != config.TraceOff {
		s.log.Info("lsp request", "method", c.Method, "id", normalizeID(c.ID), "ms", float64(time.Since(start).Microseconds())/1000, "code", code)
	}
}

func (s *Server) handleNotification(ctx context.Context, n *rpcMsg) {
	method := n.Method
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("notification handler panicked", "method", method, "panic", panicValue(r), "stack", string(debug.Stack()))
		}
	}()
	s.mu.Lock()
	state := s.state
	s.mu.Unlock()
	switch {
	case method == "exit":
		s.exit()
		return
	case method == "$/cancelRequest":
		s.cancelRequest(n.Params)
		return
	case state == stateNew:
		return // LSP: notifications before initialize are dropped
	}
	h, ok := notifications[method]
	if !ok {
		if !strings.HasPrefix(method, "$/") {
			s.log.Debug("notification ignored", "method", clip(method))
		}
		return
	}
	if err := h(s, ctx, n.Params); err != nil {
		s.log.Warn("notification failed", "method", method, "err", err)
	}
}

// exit ends Run. It is safe to receive exit twice.
func (s *Server) exit() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.exited:
	default:
		close(s.exited)
	}
}

func (s *Server) cancelRequest(params json.RawMessage) {
	var p struct {
		ID json.RawMessage `json:"id"`
	}
	if err := json.Unmarshal(params, &p); err != nil || !idLike(p.ID) {
		s.log.Debug("$/cancelRequest without a usable id")
		return
	}
	key := normalizeID(p.ID)
	s.mu.Lock()
	call := s.calls[key]
	s.mu.Unlock()
	if call != nil {
		call.cancel(errCancelledByClient)
	}
}

// idLike reports whether raw is a JSON string or number.
func idLike(raw json.RawMessage) bool {
	if validID(raw) {
		return true
	}
	_, err := strconv.ParseFloat(string(bytes.TrimSpace(raw)), 64)
	return err == nil
}

// normalizeID maps a JSON request id to its key, whatever JSON spelling a number has (1, 1.0,
// 1e0: a number decoded through interface{} is a float64).
func normalizeID(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return "s:" + s
		}
	}
	if f, err := strconv.ParseFloat(string(raw), 64); err == nil && f == float64(int64(f)) {
		return "n:" + strconv.FormatInt(int64(f), 10)
	}
	return "n:" + string(raw)
}

// invalidParams is the error for params the server cannot use.
func invalidParams(format string, args ...any) error {
	return jsonrpc2.Errorf(jsonrpc2.InvalidParams, format, args...)
}

// decodeParams decodes a request's or notification's params into v.
func decodeParams(method string, raw json.RawMessage, v any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return invalidParams("%s: params are required", method)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return invalidParams("%s: invalid params: %s", method, jsonProblem(err))
	}
	return nil
}

// rpcError maps an error to the LSP error a client gets.
func rpcError(err error) *jsonrpc2.Error {
	var e *jsonrpc2.Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, document.ErrPosition), errors.Is(err, document.ErrNotOpen):
		return jsonrpc2.NewError(jsonrpc2.InvalidParams, err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return jsonrpc2.NewError(lspx.ServerCancelled, "the server stopped the request")
	}
	return jsonrpc2.NewError(lspx.RequestFailed, err.Error())
}

func panicValue(r any) string {
	if err, ok := r.(error); ok {
		return err.Error()
	}
	return fmt.Sprintf("%T", r)
}
