package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	wire "github.com/codingplan/codingplan/shared"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"go.lsp.dev/jsonrpc2"
	"go.lsp.dev/protocol"

	"github.com/codingplan/codingplan/lsp/internal/config"
	"github.com/codingplan/codingplan/lsp/internal/document"
	"github.com/codingplan/codingplan/lsp/internal/lspx"
	"github.com/codingplan/codingplan/lsp/internal/transport"
)

// A request is handled in two steps. prepare runs on the read loop, in order with the
// notifications around it: it decodes and checks the params and takes the document snapshot
// the request refers to, so it sees exactly the edits sent before it. The request then
// releases the read loop (jsonrpc2.Async) and its run function goes on concurrently, with a
// context that $/cancelRequest ends (jsonrpc2.CancelHandler).
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
		protocol.MethodTextDocumentInlineCompletion: (*Server).prepareInline,
		protocol.MethodTextDocumentCompletion:       (*Server).prepareCompletion,
		protocol.MethodTextDocumentCodeAction:       (*Server).prepareCodeAction,
		protocol.MethodCodeActionResolve:            (*Server).prepareResolve,
		protocol.MethodWorkspaceExecuteCommand:      (*Server).prepareCommand,
	}
	notifications = map[string]notifyFunc{
		protocol.MethodInitialized:                        (*Server).initialized,
		protocol.MethodTextDocumentDidOpen:                (*Server).didOpen,
		protocol.MethodTextDocumentDidChange:              (*Server).didChange,
		protocol.MethodTextDocumentDidClose:               (*Server).didClose,
		protocol.MethodTextDocumentDidSave:                func(*Server, context.Context, json.RawMessage) error { return nil },
		protocol.MethodWorkspaceDidChangeConfiguration:    (*Server).didChangeConfiguration,
		protocol.MethodWorkspaceDidChangeWorkspaceFolders: (*Server).didChangeWorkspaceFolders,
		protocol.MethodWindowWorkDoneProgressCancel:       (*Server).progressCancel,
		lspx.MethodDidShowCompletion:                      (*Server).didShowCompletion,
		lspx.MethodDidPartiallyAcceptCompletion:           (*Server).didPartiallyAccept,
	}
}

// handle is the connection's jsonrpc2.Handler. A notification's error is logged, never
// returned (jsonrpc2 would end the connection); a panic is answered InternalError.
func (s *Server) handle(ctx context.Context, req *jsonrpc2.Request) (any, error) {
	if !req.IsCall() {
		// A notification's handler may start work that outlives it: give it the connection's
		// context, not the request's, which jsonrpc2 recycles.
		s.handleNotification(jsonrpc2.DetachContext(ctx), req.Method(), json.RawMessage(req.Params()))
		return nil, nil
	}
	return s.handleCall(ctx, req)
}

func (s *Server) handleCall(ctx context.Context, req *jsonrpc2.Request) (result any, err error) {
	start := time.Now()
	method, id := req.Method(), req.ID()
	released := false
	defer func() {
		// Every call is released before it returns, even one answered at once: jsonrpc2 recycles
		// the context of a request that was not, while the goroutine context.WithCancel started
		// for jsonrpc2.CancelHandler may still be about to read it.
		if !released {
			jsonrpc2.Async(ctx)
		}
		if r := recover(); r != nil {
			s.log.Error("request panicked", "method", method, "panic", panicValue(r), "stack", string(debug.Stack()))
			result, err = nil, jsonrpc2.NewError(jsonrpc2.InternalError, "internal error in "+method)
		}
		if err != nil {
			err, result = rpcError(err), nil
		}
		if s.traceMode() != config.TraceOff {
			code := 0
			var e *jsonrpc2.Error
			if errors.As(err, &e) {
				code = int(e.Code)
			}
			s.log.Info("lsp request", "method", method, "id", fmt.Sprint(id), "ms", float64(time.Since(start).Microseconds())/1000, "code", code)
		}
	}()

	s.mu.Lock()
	state := s.state
	s.mu.Unlock()
	switch {
	case method == protocol.MethodInitialize:
		return s.initialize(ctx, json.RawMessage(req.Params()))
	case state == stateNew:
		return nil, jsonrpc2.NewError(jsonrpc2.ServerNotInitialized, method+": the server is not initialized yet")
	case state == stateShutdown:
		return nil, jsonrpc2.NewError(jsonrpc2.InvalidRequest, method+": the server is shutting down")
	case method == protocol.MethodShutdown:
		s.mu.Lock()
		s.state, s.sawShutdown = stateShutdown, true
		s.mu.Unlock()
		return nil, nil
	}
	prepare, ok := requests[method]
	if !ok {
		return nil, jsonrpc2.NewError(jsonrpc2.MethodNotFound, "method not found: "+wire.Clip(method, 32))
	}
	run, err := prepare(s, ctx, json.RawMessage(req.Params()))
	if err != nil {
		return nil, err
	}
	jsonrpc2.Async(ctx) // the read loop goes on; this request runs concurrently from here
	released = true
	result, err = run(ctx)
	if ctx.Err() != nil {
		// $/cancelRequest ended it (or the connection is going, and no one reads the answer).
		return nil, jsonrpc2.NewError(lspx.RequestCancelled, method+": cancelled")
	}
	return result, err
}

func (s *Server) handleNotification(ctx context.Context, method string, params json.RawMessage) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("notification handler panicked", "method", method, "panic", panicValue(r), "stack", string(debug.Stack()))
		}
	}()
	s.mu.Lock()
	state := s.state
	s.mu.Unlock()
	switch {
	case method == protocol.MethodExit:
		s.exit()
		return
	case method == protocol.MethodCancelRequest:
		s.cancelRequest(params)
		return
	case state == stateNew:
		return // LSP: notifications before initialize are dropped
	}
	h, ok := notifications[method]
	if !ok {
		if !strings.HasPrefix(method, "$/") {
			s.log.Debug("notification ignored", "method", wire.Clip(method, 32))
		}
		return
	}
	if err := h(s, ctx, params); err != nil {
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

// cancelRequest handles $/cancelRequest: the request with that id (a number, integral even
// when spelled as a float, or a string) is cancelled through jsonrpc2.CancelHandler.
func (s *Server) cancelRequest(params json.RawMessage) {
	var p struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(params, &p) != nil {
		s.log.Debug("$/cancelRequest without a usable id")
		return
	}
	id, ok := transport.ParseID(p.ID, true)
	if !ok {
		s.log.Debug("$/cancelRequest without a usable id")
		return
	}
	s.cancel(id)
}

// invalidParams is the error for params the server cannot use.
func invalidParams(format string, args ...any) error {
	return jsonrpc2.Errorf(jsonrpc2.InvalidParams, format, args...)
}

// decodeParams decodes a request's or notification's params into v, a go.lsp.dev/protocol
// type or one of lspx's.
func decodeParams(method string, raw json.RawMessage, v any) error {
	raw = json.RawMessage(strings.TrimSpace(string(raw)))
	if len(raw) == 0 || string(raw) == "null" {
		return invalidParams("%s: params are required", method)
	}
	if err := protocol.Unmarshal(raw, v); err != nil {
		return invalidParams("%s: invalid params: %s", method, jsonProblem(raw, err))
	}
	return nil
}

// jsonProblem describes a decoding error of raw without quoting it: where, and what was
// expected ("position.line must be a number, not string").
func jsonProblem(raw []byte, err error) string {
	var se *jsonv2.SemanticError
	if errors.As(err, &se) && se.JSONKind != 0 {
		want := "an object"
		if se.GoType != nil {
			want = jsonType(se.GoType.Kind().String(), se.GoType.String())
		}
		return fmt.Sprintf("%s must be %s, not %s", fieldName(string(se.JSONPointer)), want, kindName(se.JSONKind))
	}
	var syn *jsontext.SyntacticError
	if errors.As(err, &syn) {
		return fmt.Sprintf("syntax error at byte %d", syn.ByteOffset)
	}
	// protocol's generated decoders say "protocol: invalid JSON <kind> at offset <n>".
	if m := decodeErr.FindStringSubmatch(err.Error()); m != nil {
		off, _ := strconv.ParseInt(m[2], 10, 64)
		if ptr, kind := valueAt(raw, off); kind != 0 {
			return fmt.Sprintf("%s must be %s, not %s", fieldName(ptr), article(m[1]), kindName(kind))
		}
	}
	return "not the expected shape"
}

// decodeErr matches the errors of go.lsp.dev/protocol's generated decoders.
var decodeErr = regexp.MustCompile(`invalid JSON (\w+) at offset (\d+)`)

// valueAt returns the JSON pointer and kind of the value of raw that holds byte off.
func valueAt(raw []byte, off int64) (string, jsontext.Kind) {
	dec := jsontext.NewDecoder(bytes.NewReader(raw))
	for {
		tok, err := dec.ReadToken()
		if err != nil {
			return "", 0
		}
		if dec.InputOffset() > off {
			return string(dec.StackPointer()), tok.Kind()
		}
	}
}

// fieldName spells a JSON pointer as a dotted field path.
func fieldName(ptr string) string {
	if ptr == "" {
		return "the value"
	}
	return strings.ReplaceAll(strings.TrimPrefix(ptr, "/"), "/", ".")
}

// article names a JSON kind with its article: "an object", "a number".
func article(kind string) string {
	if strings.ContainsAny(kind[:1], "aeiou") {
		return "an " + kind
	}
	return "a " + kind
}

// jsonType names a Go type the way a JSON user would.
func jsonType(kind, name string) string {
	switch {
	case strings.HasPrefix(kind, "slice"), strings.HasPrefix(kind, "array"):
		return "an array"
	case strings.Contains(kind, "int"), strings.Contains(kind, "float"):
		return "a number"
	case kind == "string" || strings.HasSuffix(name, "URI"):
		return "a string"
	case kind == "bool":
		return "true or false"
	}
	return "an object"
}

// kindName names a JSON kind.
func kindName(k jsontext.Kind) string {
	switch k {
	case '"':
		return "string"
	case '0':
		return "number"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	case '[':
		return "array"
	}
	return "object"
}

// rpcError maps an error to the LSP error a client gets, once, here.
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

// lspArgs encodes a command's arguments.
func lspArgs(args ...any) []protocol.LSPAny {
	out := make([]protocol.LSPAny, len(args))
	for i, a := range args {
		raw, err := protocol.Marshal(a)
		if err != nil {
			raw = []byte("null")
		}
		out[i] = raw
	}
	return out
}

// tooltipText is the text of a string-or-markup value (a diagnostic's message).
func tooltipText(t protocol.InlayHintTooltip) string {
	switch t := t.(type) {
	case protocol.String:
		return string(t)
	case *protocol.MarkupContent:
		return t.Value
	}
	return ""
}
