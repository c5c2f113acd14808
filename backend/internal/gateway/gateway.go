// Package gateway serves the websocket endpoint GET /v1/ws: it authenticates the upgrade, then
// runs one session per connection (one reader and one writer goroutine) that turns request
// frames into model streams under the caller's plan limit and relays their output as delta
// frames.
//
// The dependencies are small interfaces declared here: a token verifier, a lease pool, a model
// router, a usage meter and a metrics observer. main wires the real ones; tests use fakes.
package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/codingplan/codingplan/backend/internal/auth"
	"github.com/codingplan/codingplan/backend/internal/upstream"
	wire "github.com/codingplan/codingplan/shared"
	"github.com/codingplan/codingplan/shared/clock"
)

// Verifier checks a bearer token (auth.Verifier). Errors wrap auth.ErrInvalid or
// auth.ErrExpired.
type Verifier interface {
	Verify(ctx context.Context, token string) (*auth.Claims, error)
}

// Leaser admits model streams under a user's concurrency limit (lease.Pool, through a small
// adapter in main). Acquire may wait, calling onQueued with the request's place in line; over
// the limit its error wraps lease.ErrLimit.
type Leaser interface {
	Acquire(ctx context.Context, user string, limit int, onQueued func(position int)) (Lease, error)
	InUse(ctx context.Context, user string) (int, error)
}

// Lease is one admitted stream (*lease.Lease). Release, after a stream that finished, may keep
// the slot on this node for the user's next stream; ReleaseNow, after a cancel or a failure,
// gives it back at once. Both are idempotent and survive cancellation. OnLost registers a
// function called once if the lease is lost while the stream runs (its error wraps
// lease.ErrLost); the stream must then stop.
type Lease interface {
	Release()
	ReleaseNow()
	OnLost(f func(err error))
}

// Router resolves a plan's requested model ("" for the default) to the provider that streams
// it (upstream.Router.Resolve, through an adapter). Errors wrap upstream.ErrUnknownModel or
// upstream.ErrNotAllowed.
type Router interface {
	Resolve(plan, model string) (upstream.Provider, error)
}

// Catalog lists the models a plan may use and what each serves, for hello frames
// (upstream.Router.Models).
type Catalog interface {
	Models(plan string) []wire.Model
}

// Meter counts usage per user and day (usage.Meter). It never sees content.
type Meter interface {
	Record(ctx context.Context, user string, u wire.Usage) error
}

// Observer receives anonymous events for metrics; it never gets a user id. Implementations
// must be fast and safe for concurrent use.
type Observer interface {
	Connection(delta int)
	StreamStarted()
	StreamEnded(s StreamStats)
	Revoked()               // a connection was closed by a revocation
	RevocationCheckFailed() // the denylist could not be read; the token was let through
	Refused(reason string)  // an upgrade was refused for a limit: one of the Refused* reasons
}

// StreamStats describe one finished stream.
type StreamStats struct {
	Outcome    string        // "ok", or the wire error code that ended the stream
	FirstToken time.Duration // from the request frame to the first delta; 0 when there was none
	Duration   time.Duration // from the request frame to the end
	Usage      wire.Usage
}

// Config tunes the gateway. Zero fields take the defaults in brackets.
type Config struct {
	// Plans maps a plan name (the token's plan claim) to its concurrency. Required.
	Plans map[string]int
	// AllowedOrigins are the Origin values allowed to upgrade; "*" allows all. Upgrades
	// without an Origin header are always allowed. [none]
	AllowedOrigins []string
	// MaxInFlight caps the open streams of one connection. [wire.MaxInFlight]
	MaxInFlight int
	// SendQueue is the outgoing frames buffered per connection. [64]
	SendQueue int
	// SlowConsumer is how long output may stay unread by the client, or a delta wait for room
	// in a full send queue, before streams are cancelled (see slow.go). [2s]
	SlowConsumer time.Duration
	// PingInterval is the websocket ping period. [20s]
	PingInterval time.Duration
	// IdleTimeout closes a connection that sent nothing, pongs included, for this long. [60s]
	IdleTimeout time.Duration
	// WriteTimeout bounds one websocket write. [10s]
	WriteTimeout time.Duration
	// Server names the server in hello frames. ["codingplan-backend"]
	Server string
	// MaxConnsPerNode caps one user's websockets on this node; 0: no cap. [0]
	MaxConnsPerNode int
	// MaxConns caps one user's websockets on all nodes together, counted by Deps.Conns;
	// 0, or no Conns: no cap. [0]
	MaxConns int
	// UpgradesPerMinute and UpgradeBurst are the token bucket of upgrades each client address
	// (an IPv6 one by its /64) may make; 0 per minute: no limit. [0]
	UpgradesPerMinute, UpgradeBurst int
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.MaxInFlight <= 0 || c.MaxInFlight > wire.MaxInFlight {
		c.MaxInFlight = wire.MaxInFlight
	}
	if c.SendQueue <= 0 {
		c.SendQueue = 64
	}
	def(&c.SlowConsumer, 2*time.Second)
	def(&c.PingInterval, 20*time.Second)
	def(&c.IdleTimeout, 60*time.Second)
	def(&c.WriteTimeout, 10*time.Second)
	if c.Server == "" {
		c.Server = "codingplan-backend"
	}
	return c
}

// Deps are the gateway's collaborators. Verifier, Leases and Router are required.
type Deps struct {
	Verifier Verifier
	Leases   Leaser
	Router   Router
	Models   Catalog  // nil: hello frames list no models
	Meter    Meter    // nil: no metering
	Observer Observer // nil: no metrics
	// Clock measures and schedules (token expiry, slow consumers, pings, latencies); tests
	// inject one to expire tokens on demand. Connection deadlines stay on the real clock,
	// which the network stack reads. nil: the real clock.
	Clock clock.Clock
	// Revocations is the denylist checked at upgrades and auth frames (revoke.Checker); nil
	// checks nothing. Events reach the Server through Handle and Resync (revoke.Handler).
	Revocations Revocations
	// Conns counts each user's connections across nodes (conns.Counter) for Config.MaxConns;
	// nil: no cross-node limit (the per-node one still holds).
	Conns Conns
}

// Server is the websocket endpoint. It is an http.Handler for wire.Path.
type Server struct {
	cfg      Config
	deps     Deps
	log      *slog.Logger
	upgrader websocket.Upgrader

	admission *admission // per-address and per-node limits on upgrades (admission.go)

	mu       sync.Mutex
	sessions map[*session]struct{}
	byUser   map[string]map[*session]struct{} // the sessions of each user, for revocations
	events   uint64                           // revocation events and resyncs handled so far
	draining bool
	wg       sync.WaitGroup // one per session
	pings    *pinger
}

// New returns a Server.
func New(cfg Config, deps Deps, log *slog.Logger) *Server {
	if deps.Observer == nil {
		deps.Observer = nopObserver{}
	}
	if deps.Meter == nil {
		deps.Meter = nopMeter{}
	}
	deps.Clock = clock.OrReal(deps.Clock)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg.withDefaults(), deps: deps, log: log, sessions: map[*session]struct{}{},
		byUser: map[string]map[*session]struct{}{}}
	s.pings = newPinger(deps.Clock, s.cfg.PingInterval)
	s.admission = newAdmission(s.cfg, deps.Clock)
	s.upgrader = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		// A small read buffer: gorilla reads frame headers and control frames through it, and
		// larger payloads straight into the read loop's pooled buffer. Held for the
		// connection's life, so it is most of what an idle connection's reading costs.
		ReadBufferSize:  readBufferSize,
		WriteBufferSize: 4096,
		WriteBufferPool: &wipingPool{},
		Subprotocols:    []string{wire.Subprotocol},
		CheckOrigin:     func(*http.Request) bool { return true }, // checked in ServeHTTP, before auth
		Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
			writeReject(w, status, wire.CodeBadRequest, "websocket upgrade failed: "+reason.Error())
		},
	}
	return s
}

// ServeHTTP authenticates the upgrade request and runs the connection's session until it ends.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.isDraining() {
		w.Header().Set("Retry-After", "1")
		writeReject(w, http.StatusServiceUnavailable, wire.CodeInternal, "the server is shutting down; connect again")
		return
	}
	if !s.allowAddr(w, r) {
		return
	}
	if !s.originAllowed(r.Header.Get("Origin")) {
		writeReject(w, http.StatusForbidden, wire.CodeUnauthorized, "origin not allowed")
		return
	}
	token, problem := bearer(r)
	if problem != "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="codingplan"`)
		writeReject(w, http.StatusUnauthorized, wire.CodeUnauthorized, problem)
		return
	}
	claims, err := s.deps.Verifier.Verify(r.Context(), token)
	if err != nil {
		e := toWire(err, "")
		s.log.Info("upgrade rejected", "code", e.Code, "err", err)
		w.Header().Set("WWW-Authenticate", `Bearer realm="codingplan", error="invalid_token"`)
		writeReject(w, http.StatusUnauthorized, e.Code, e.Message)
		return
	}
	events := s.eventCount()
	plan, limit, e := s.admit(r.Context(), claims)
	if e != nil {
		s.log.Info("upgrade rejected", "code", e.Code, "user", claims.Subject, "reason", e.Message)
		status := http.StatusForbidden
		if e.Code == wire.CodeUnauthorized {
			status = http.StatusUnauthorized
			w.Header().Set("WWW-Authenticate", `Bearer realm="codingplan", error="invalid_token"`)
		}
		writeReject(w, status, e.Code, e.Message)
		return
	}
	release, ok := s.admitConn(r.Context(), w, claims.Subject)
	if !ok {
		return
	}
	conn, err := s.upgrader.Upgrade(&hijacker{ResponseWriter: w}, r, nil)
	if err != nil {
		release()
		s.log.Debug("upgrade failed", "err", err) // the upgrader answered already
		return
	}
	sess := newSession(s, conn, claims, plan, limit)
	added, missed := s.add(sess, events)
	if !added {
		sess.closeWith(nil, websocket.CloseGoingAway, "shutdown")
	} else if missed {
		// An event arrived between the check and add: it may have been about this token.
		sess.recheck(r.Context())
	}
	// The session runs on a goroutine of its own, owned by the Server (s.wg, which Shutdown
	// waits for), so that the handler returns and net/http lets go of what it holds for the
	// request: its buffers and the handler's stack, most of an idle connection's memory before.
	ctx := context.WithoutCancel(r.Context())
	sess.open(ctx)
	go func() {
		defer s.remove(sess)
		defer release() // before remove: a connection counted gone has freed its slot
		sess.run(ctx)
	}()
}

// bearer finds the token in the Authorization header or in a subprotocol. problem is set when
// there is none, or the subprotocols do not include wire.Subprotocol.
func bearer(r *http.Request) (token, problem string) {
	protos := websocket.Subprotocols(r)
	offered := false
	for _, p := range protos {
		switch {
		case p == wire.Subprotocol:
			offered = true
		case strings.HasPrefix(p, wire.TokenSubprotocolPrefix) && token == "":
			token = strings.TrimPrefix(p, wire.TokenSubprotocolPrefix)
		}
	}
	if len(protos) > 0 && !offered {
		return "", "offer the " + wire.Subprotocol + " subprotocol"
	}
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, value, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return "", "the Authorization header must be Bearer"
		}
		token = strings.TrimSpace(value)
	}
	if token == "" {
		return "", "no token: send Authorization: Bearer <token> or the " + wire.TokenSubprotocolPrefix + "<token> subprotocol"
	}
	return token, ""
}

func (s *Server) originAllowed(origin string) bool {
	if origin == "" {
		return true
	}
	for _, o := range s.cfg.AllowedOrigins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

// rejectBody is the JSON body of a refused upgrade.
type rejectBody struct {
	Code    wire.Code `json:"code"`
	Message string    `json:"message"`
}

func writeReject(w http.ResponseWriter, status int, code wire.Code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(rejectBody{Code: code, Message: msg})
}

func (s *Server) isDraining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draining
}

// add registers a session; false when the server is draining. missed says whether a
// revocation event or resync was handled since eventCount returned events.
func (s *Server) add(sess *session, events uint64) (ok, missed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions[sess] = struct{}{}
	if s.byUser[sess.user] == nil {
		s.byUser[sess.user] = map[*session]struct{}{}
	}
	s.byUser[sess.user][sess] = struct{}{}
	s.wg.Add(1)
	s.deps.Observer.Connection(1)
	return !s.draining, s.events != events
}

func (s *Server) remove(sess *session) {
	s.mu.Lock()
	delete(s.sessions, sess)
	delete(s.byUser[sess.user], sess)
	if len(s.byUser[sess.user]) == 0 {
		delete(s.byUser, sess.user)
	}
	s.mu.Unlock()
	s.deps.Observer.Connection(-1)
	s.wg.Done()
}

func (s *Server) eventCount() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.events
}

// Draining reports whether Shutdown has begun.
func (s *Server) Draining() bool { return s.isDraining() }

// Shutdown drains: new upgrades get 503, every connection gets a goaway frame and takes no
// new requests, and each closes once its streams have finished. When ctx ends first, the
// remaining streams are cancelled (their clients get an error frame, their leases are
// released) and the connections closed. Shutdown returns when every session has ended, or
// ctx's error when it had to cancel streams.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	list := s.sessionsLocked()
	s.mu.Unlock()
	s.log.Info("draining", "connections", len(list))
	var told sync.WaitGroup // a session with a full send queue must not hold up the others
	for _, sess := range list {
		told.Go(sess.goaway)
	}
	told.Wait()
	done := make(chan struct{})
	go func() { // owned by Shutdown: it waits for done below in every path
		s.wg.Wait()
		s.pings.wait() // its loop ends with the last session
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	list = list[:0]
	for sess := range s.sessions {
		list = append(list, sess)
	}
	s.mu.Unlock()
	s.log.Warn("drain deadline passed; cancelling streams", "connections", len(list))
	for _, sess := range list {
		sess.abort(errGoingAway)
	}
	// Cancelled streams end promptly; a stuck write ends within WriteTimeout.
	t, late := s.deps.Clock.NewTimer(s.cfg.WriteTimeout + closeGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-late:
		s.log.Error("connections still open after drain", "connections", len(list))
		for _, sess := range list {
			sess.kill()
		}
		<-done
	}
	return ctx.Err()
}

func newConnID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type nopObserver struct{}

func (nopObserver) Connection(int)          {}
func (nopObserver) StreamStarted()          {}
func (nopObserver) StreamEnded(StreamStats) {}
func (nopObserver) Revoked()                {}
func (nopObserver) RevocationCheckFailed()  {}
func (nopObserver) Refused(string)          {}

type nopMeter struct{}

func (nopMeter) Record(context.Context, string, wire.Usage) error { return nil }

var errGoingAway = errors.New("server going away")
