// Package server is the language server's protocol side: it reads LSP over a stream, keeps
// the open documents, and answers inline completion, completion, code actions and commands,
// asking the completion engine and the backend connection for the AI parts.
//
// JSON-RPC is go.lsp.dev/jsonrpc2's, over package transport's stream, and every LSP type is
// go.lsp.dev/protocol's: each request runs concurrently with its own context, cancelled by
// $/cancelRequest (numeric or string ids) and answered RequestCancelled; notifications and
// each request's first step run in order on the read loop, so document changes apply in the
// order they were sent and a request sees every change sent before it (dispatch.go).
package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.lsp.dev/jsonrpc2"
	"go.lsp.dev/protocol"

	"github.com/codingplan/codingplan/lsp/internal/config"
	"github.com/codingplan/codingplan/lsp/internal/document"
	"github.com/codingplan/codingplan/lsp/internal/erase"
	"github.com/codingplan/codingplan/lsp/internal/lsplog"
	"github.com/codingplan/codingplan/lsp/internal/remote"
	"github.com/codingplan/codingplan/lsp/internal/signin"
	"github.com/codingplan/codingplan/lsp/internal/transport"
	wire "github.com/codingplan/codingplan/shared"
	"github.com/codingplan/codingplan/shared/clock"
)

// Streamer runs one request on the backend, calling onDelta with each piece of the answer,
// and returns the done frame. Errors are *wire.Error or remote's sentinels.
type Streamer interface {
	Stream(ctx context.Context, req wire.ClientFrame, onDelta func(text []byte)) (wire.ServerFrame, error)
}

// Connection is the backend connection's control side.
type Connection interface {
	SetToken(wire.Secret)
	// OnRefused has f told of each token the backend refuses (expired, revoked).
	OnRefused(f func(token wire.Secret, code wire.Code))
	SetURL(string)
	// SetTransport sets how the connection is secured: whether ws:// may leave this machine,
	// and the extra CA certificates.
	SetTransport(remote.Transport)
	// Retry connects now when the connection waits to retry.
	Retry()
	Status() remote.Status
	// Watch has f called with each new status until stop is called.
	Watch(f func(remote.Status)) (stop func())
}

// Backend is the connection to the backend: remote.Client.
type Backend interface {
	Streamer
	Connection
	// Run keeps the connection up until ctx ends.
	Run(ctx context.Context) error
}

// Config configures a Server.
type Config struct {
	// Name and Version go into initialize's serverInfo.
	Name, Version string
	// Backend is the backend connection; nil runs without one (completions and actions fail
	// fast). The server runs it from initialize until exit.
	Backend Backend
	// Engine completes code; nil offers no completions.
	Engine Completer
	// Env is what the environment says about settings.
	Env config.Env
	// SignInFile keeps the device sign-in's refresh token (signin.DefaultPath() in main); a
	// zero Path keeps it in memory only.
	SignInFile signin.File
	// RefreshEarly is how long before an access token expires a fresh one is fetched
	// (signin.KeeperConfig.Early); zero: 2 minutes.
	RefreshEarly time.Duration
	// Clock schedules refreshes and the device sign-in's polls; nil: the real clock.
	Clock clock.Clock
	// Logs, when set, has the server's log sent to the editor (window/logMessage) during Run.
	Logs LogSink
}

// LogSink is where the server's log goes (lsplog.Handler): Attach connects it to the editor.
type LogSink interface {
	Attach(send lsplog.Send) (detach func())
}

// Errors Run returns.
var (
	// ErrNoShutdown: the client sent exit without shutdown first (exit code 1).
	ErrNoShutdown = errors.New("server: exit without shutdown")
	// ErrClosed: the input ended before exit.  An error wrapping ErrFraming: the input's
	// framing broke (see package transport); the editor was told with window/logMessage.
	ErrClosed = errors.New("server: connection closed before exit")
	// ErrFraming is transport.ErrFraming.
	ErrFraming = transport.ErrFraming
)

// Server is one language server session. Run it once.
type Server struct {
	cfg  Config
	log  *slog.Logger
	docs *document.Store

	conn    jsonrpc2.Conn     // guarded by mu
	session context.Context   // Run's: background work outlives the request that starts it
	cancel  func(jsonrpc2.ID) // cancels an in-flight request by id (jsonrpc2.CancelHandler)
	exited  chan struct{}     // closed by the exit notification
	wg      sync.WaitGroup

	mu              sync.Mutex
	state           int
	sawShutdown     bool
	enc             document.Encoding
	caps            protocol.ClientCapabilities
	clientName      string
	folders         []folder
	initOpts        json.RawMessage // the initializationOptions layer of the settings
	settings        config.Settings
	enabled         bool
	forced          bool                          // the enable or toggle command turned completions on (config.Enable.For)
	signedIn        *wire.Secret                  // a token set by codingplan.signIn / signOut, overriding the settings
	keeper          *signin.Keeper                // the account service sign-in (device or API key)
	managed         wire.Secret                   // the keeper's current access token
	preferManaged   bool                          // a device sign-in came after the token setting: it wins
	toldRefused     wire.Secret                   // the user's token the user was told the backend refused
	signingIn       context.CancelFunc            // ends the device sign-in in progress
	signInSeq       uint64                        // counts device sign-ins: a newer one replaces an older
	initializedSeen bool                          // the initialized notification came: the server may notify
	runs            map[string]context.CancelFunc // code action runs by progress token
	nextToken       int
	configSeq       uint64       // the latest workspace/configuration pull; older answers are dropped
	trace           atomic.Value // string: config.Trace*
}

// Session states.
const (
	stateNew = iota
	stateRunning
	stateShutdown
)

// New returns a server.
func New(cfg Config, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Name == "" {
		cfg.Name = "codingplan-lsp"
	}
	s := &Server{
		cfg:      cfg,
		log:      log,
		docs:     document.NewStore(),
		exited:   make(chan struct{}),
		runs:     map[string]context.CancelFunc{},
		settings: cfg.Env.Apply(config.Default()),
		enabled:  true,
	}
	// No URL is in use before the first settings apply: an invalid backendUrl then leaves
	// none (or the environment's), never the default (see applySettings).
	s.settings.BackendURL = cfg.Env.BackendURL
	s.trace.Store(config.TraceOff)
	s.keeper = signin.NewKeeper(signin.KeeperConfig{
		File: cfg.SignInFile, Set: s.setManaged, Lost: s.signInLost, Early: cfg.RefreshEarly, Clock: cfg.Clock,
	}, log.With("part", "signin"))
	return s
}

// Run serves LSP on rwc until the exit notification, the end of the input, or ctx's end. It
// returns nil after shutdown then exit, ErrNoShutdown after exit alone, ErrClosed when the
// input ends first, an error wrapping ErrFraming when its framing breaks, or ctx's error. Every goroutine it started has ended when it returns.
func (s *Server) Run(ctx context.Context, rwc io.ReadWriteCloser) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	conn := jsonrpc2.NewConn(transport.NewStream(rwc, s.traceMessage), jsonrpc2.WithCodec(transport.Codec{}))
	handler, cancelByID := jsonrpc2.CancelHandler(s.handle)
	s.mu.Lock()
	s.conn, s.cancel, s.session = conn, cancelByID, ctx
	s.mu.Unlock()
	// The read loop and every request it releases run under erase: the goroutines a protected
	// function starts are protected too.
	erase.Do(func() { conn.Go(ctx, handler) })
	if s.cfg.Logs != nil {
		detach := s.cfg.Logs.Attach(func(ctx context.Context, typ protocol.MessageType, msg string) error {
			// Straight to the connection: s.notify logs its failures, which would come back here.
			return conn.Notify(ctx, protocol.MethodWindowLogMessage, &protocol.LogMessageParams{Type: typ, Message: msg})
		})
		defer detach()
	}
	if s.cfg.Backend != nil {
		s.cfg.Backend.OnRefused(s.refused)
		stop := s.cfg.Backend.Watch(func(st remote.Status) { s.pushStatus(context.WithoutCancel(ctx), &st) })
		defer stop()
	}

	var err error
	select {
	case <-s.exited:
		s.mu.Lock()
		if !s.sawShutdown {
			err = ErrNoShutdown
		}
		s.mu.Unlock()
	case <-conn.Done():
		err = ErrClosed
		if ferr := conn.Err(); errors.Is(ferr, ErrFraming) {
			// Say why in the editor's log before going: the editor only sees the process end.
			err = ferr
			s.log.Error("stopping: the editor's messages cannot be read", "err", ferr)
		}
	case <-ctx.Done():
		err = ctx.Err()
	}
	cancel()
	_ = conn.Close()
	s.wg.Wait()
	return err
}

// goBackground runs f on a goroutine that Run waits for, with the session's context, which
// ends at exit (a request's context ends with the request).
func (s *Server) goBackground(name string, f func(ctx context.Context)) {
	s.mu.Lock()
	ctx := s.session
	s.mu.Unlock()
	s.wg.Add(1)
	go erase.Do(func() {
		defer s.wg.Done()
		defer func() {
			if r := recover(); r != nil {
				s.log.Error("background task panicked", "task", name, "panic", panicValue(r))
			}
		}()
		f(ctx)
	})
}

// notify sends a notification to the client; failures are logged.
func (s *Server) notify(ctx context.Context, method string, params any) {
	s.mu.Lock()
	conn := s.conn
	s.mu.Unlock()
	if conn == nil {
		return
	}
	if err := conn.Notify(ctx, method, params); err != nil {
		s.log.Debug("notification not sent", "method", method, "err", err)
	}
}

// call sends a request to the client and decodes its result into result.
func (s *Server) call(ctx context.Context, method string, params, result any) error {
	s.mu.Lock()
	conn := s.conn
	s.mu.Unlock()
	if conn == nil {
		return ErrClosed
	}
	_, err := conn.Call(ctx, method, params, result)
	return err
}

// snapshot returns what a request needs of the session's state, read together.
func (s *Server) snapshot() (config.Settings, document.Encoding, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.settings, s.enc, s.enabled
}
