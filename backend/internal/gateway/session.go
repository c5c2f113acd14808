package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/codingplan/codingplan/backend/internal/auth"
	wire "github.com/codingplan/codingplan/shared"
)

const (
	// closeGrace is how long the reader waits for the peer's close frame after ours.
	closeGrace = time.Second
	// keepReadBuf is the largest read buffer a session keeps between frames.
	keepReadBuf = 64 << 10
	// readBufferSize is gorilla's read buffer for each connection.
	readBufferSize = 512
)

var (
	errTooLarge     = errors.New("frame too large")
	errDisconnected = errors.New("client disconnected")
)

// session is one websocket connection: its reader runs on the goroutine that called run, its
// writer on one goroutine run starts and waits for, and each stream on a goroutine of its own
// that run waits for too.
type session struct {
	srv   *Server
	conn  *websocket.Conn
	batch *batchConn // conn's network connection; nil when it is not one
	log   *slog.Logger
	user  string // the token's sub; an auth frame may not change it

	send chan *frameBuf // to the writer; whoever puts a frame in calls kick
	// quit asks the writer to flush, write final (if any) and a close frame, and stop.
	quit      chan struct{}
	quitOnce  sync.Once
	final     *frameBuf
	closeCode int
	closeText string
	closing   atomic.Bool   // a close frame is on its way: frames from the client are ignored
	revoked   atomic.Bool   // closed by a revocation (revoke.go)
	probe     probe         // whether the client reads what is written (see slow.go)
	dead      chan struct{} // closed when the writer has stopped for good: nothing more can be sent
	deadOnce  sync.Once
	streamsWG sync.WaitGroup

	// The writer runs only while there is something to write (see idle.go).
	wmu      sync.Mutex
	writing  bool           // a writer goroutine runs, or is about to; at most one at a time
	pingDue  bool           // the pinger asked for a keepalive ping
	writers  sync.WaitGroup // the writer goroutines, for run to wait on
	pingSlot int            // the session's slot in the Server's pinger (its mu guards it)

	mu         sync.Mutex
	plan       string
	limit      int
	expires    time.Time
	sid        string      // the token's sid claim, for revocations of one sign-in
	issued     time.Time   // the token's iat; zero when it has none
	gen        int         // bumped by each accepted token; stale expiry timers see a new value
	stopExpiry func() bool // cancels the current expiry timer
	streams    map[string]*stream
	active     int // streams that have not yet queued their last frame
	draining   bool
}

func newSession(srv *Server, conn *websocket.Conn, c *auth.Claims, plan string, limit int) *session {
	batch, _ := conn.NetConn().(*batchConn)
	return &session{
		srv:     srv,
		conn:    conn,
		batch:   batch,
		log:     srv.log.With("conn", newConnID(), "user", c.Subject),
		user:    c.Subject,
		send:    make(chan *frameBuf, srv.cfg.SendQueue),
		quit:    make(chan struct{}),
		dead:    make(chan struct{}),
		plan:    plan,
		limit:   limit,
		expires: c.Expires(),
		sid:     c.SID,
		issued:  issued(c),
		streams: map[string]*stream{},
	}
}

// open greets the client (on the upgrade handler's goroutine, so that the hello's deep call
// into the lease store does not grow the reader's stack, which an idle connection keeps) and
// arms the session's timers.
func (s *session) open(ctx context.Context) {
	s.log.Info("connection opened", "plan", s.plan)
	s.srv.pings.add(s)
	s.sendHello(ctx)
	s.mu.Lock()
	s.scheduleExpiryLocked()
	s.mu.Unlock()
}

// run serves the connection, once opened, until it ends, then cancels its streams, waits for
// them (their leases are released by then) and for the writer.
func (s *session) run(ctx context.Context) {
	ctx, cancel := context.WithCancelCause(ctx)
	start := s.srv.deps.Clock.Now()
	reason := s.readLoop(ctx)

	cancel(errDisconnected)
	s.stopProbe()
	s.mu.Lock()
	if s.stopExpiry != nil {
		s.stopExpiry()
	}
	s.gen++
	s.mu.Unlock()
	s.streamsWG.Wait()
	s.closeWith(nil, websocket.CloseNormalClosure, "")
	<-s.dead
	s.writers.Wait()
	s.srv.pings.remove(s)
	s.dropQueued()
	_ = s.conn.Close()
	s.log.Info("connection closed", "reason", reason, "duration_ms", s.srv.deps.Clock.Since(start).Milliseconds())
}

// readLoop reads frames until the connection fails or closes, and returns why.
func (s *session) readLoop(ctx context.Context) string {
	cfg := &s.srv.cfg
	extend := func() {
		if !s.closing.Load() {
			_ = s.conn.SetReadDeadline(time.Now().Add(cfg.IdleTimeout))
		}
	}
	extend()
	s.conn.SetPongHandler(func(payload string) error {
		extend()
		s.probeAnswered(payload)
		return nil
	})
	// No SetReadLimit: gorilla would send its own close frame before we could say too_large.
	// readFrame below stops reading at wire.MaxFrameBytes+1 bytes instead.
	for {
		mt, r, err := s.conn.NextReader()
		if err != nil {
			return closeReason(err)
		}
		extend()
		if s.closing.Load() {
			continue // the rest is discarded by the next NextReader
		}
		// The frame's buffer comes from a pool and goes back, cleared, once it is handled: an
		// idle connection holds none.
		buf := readPool.Get().(*[]byte)
		var data []byte
		data, err = readFrame(r, (*buf)[:0], wire.MaxFrameBytes)
		if errors.Is(err, errTooLarge) {
			clear(data)
			s.log.Info("frame too large", "limit", wire.MaxFrameBytes)
			e := wire.Errorf(wire.CodeTooLarge, "frame is over %d bytes; closing", wire.MaxFrameBytes)
			s.closeWith(marshal(wire.ErrorFrame("", e)), websocket.CloseMessageTooBig, string(wire.CodeTooLarge))
			continue
		}
		if err != nil {
			clear(data)
			return closeReason(err)
		}
		if mt != websocket.TextMessage {
			s.enqueue(marshal(wire.ErrorFrame("", wire.Errorf(wire.CodeBadRequest, "frames are JSON text messages, not binary"))))
		} else {
			s.handle(ctx, data)
		}
		clear(data) // the frame's bytes are content: do not keep them around
		if cap(data) <= keepReadBuf {
			*buf = data[:0]
			readPool.Put(buf)
		}
	}
}

// readPool holds the read loops' frame buffers, cleared (see readLoop).
var readPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// readFrame appends the message r to buf, failing with errTooLarge as soon as it passes limit.
func readFrame(r io.Reader, buf []byte, limit int) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			// One byte over the limit is enough to know it was passed.
			grown := make([]byte, len(buf), min(max(2*cap(buf), 512), limit+1))
			copy(grown, buf)
			clear(buf)
			buf = grown
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > limit {
			return buf, errTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

func closeReason(err error) string {
	var ce *websocket.CloseError
	var ne net.Error
	switch {
	case errors.As(err, &ce):
		return "close " + strconv.Itoa(ce.Code)
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, net.ErrClosed), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "disconnected"
	}
	return "read error"
}

// handle decodes and acts on one client frame.
func (s *session) handle(ctx context.Context, data []byte) {
	f, err := wire.DecodeClient(data)
	if err != nil {
		s.badFrame(f, err)
		f.Wipe()
		return
	}
	switch f.Type {
	case wire.TypeRequest:
		s.startStream(ctx, f) // takes f, and wipes it when done
	case wire.TypeCancel:
		s.cancelStream(f.ID)
	case wire.TypeAuth:
		s.reauth(ctx, string(f.Token))
	case wire.TypePing:
		s.enqueue(marshal(wire.ServerFrame{Type: wire.TypePong, ID: f.ID}))
	}
}

// badFrame answers a frame that does not follow the protocol. The error names the stream only
// when the frame was a request whose id is not in use, so it cannot end another stream.
func (s *session) badFrame(f wire.ClientFrame, err error) {
	id := ""
	if f.Type == wire.TypeRequest && f.ID != "" {
		s.mu.Lock()
		_, used := s.streams[f.ID]
		s.mu.Unlock()
		if !used {
			id = f.ID
		}
	}
	s.log.Debug("bad frame", "code", wire.CodeOf(err), "type_known", f.Type != "")
	s.enqueue(marshal(wire.ErrorFrame(id, err)))
}

// sendHello sends the hello frame for the current token.
func (s *session) sendHello(ctx context.Context) {
	inUse := s.srv.inUse(ctx, s.user)
	s.mu.Lock()
	f := s.helloLocked(inUse)
	s.mu.Unlock()
	s.enqueue(f)
}

// helloLocked builds the hello frame for the current token and plan.
func (s *session) helloLocked(inUse int) *frameBuf {
	var models []wire.Model
	if s.srv.deps.Models != nil {
		models = s.srv.deps.Models.Models(s.plan)
	}
	return marshal(wire.ServerFrame{
		Type:      wire.TypeHello,
		Protocol:  wire.Version,
		Server:    s.srv.cfg.Server,
		Limits:    &wire.Limits{MaxFrameBytes: wire.MaxFrameBytes, MaxInFlight: s.srv.cfg.MaxInFlight},
		Plan:      &wire.Plan{Name: s.plan, Concurrency: s.limit, InUse: inUse},
		ExpiresAt: s.expires.Unix(),
		Models:    models,
	})
}

// scheduleExpiryLocked arms the timer that ends the connection when the token expires.
func (s *session) scheduleExpiryLocked() {
	if s.stopExpiry != nil {
		s.stopExpiry()
	}
	s.gen++
	gen := s.gen
	clock := s.srv.deps.Clock
	s.stopExpiry = clock.AfterFunc(s.expires.Sub(clock.Now()), func() { s.expire(gen) }).Stop
}

// expire ends the connection with token_expired unless a newer token arrived.
func (s *session) expire(gen int) {
	s.mu.Lock()
	stale := gen != s.gen
	s.mu.Unlock()
	if stale {
		return
	}
	s.log.Info("token expired")
	e := wire.Errorf(wire.CodeTokenExpired, "the token expired; connect again with a fresh one (send an auth frame before expires_at to keep a connection)")
	s.closeWith(marshal(wire.ErrorFrame("", e)), websocket.ClosePolicyViolation, string(wire.CodeTokenExpired))
}

// reauth handles an auth frame: a fresh token for the same user replaces the current one and
// gets a new hello; a bad one gets an error and changes nothing.
func (s *session) reauth(ctx context.Context, token string) {
	c, err := s.srv.deps.Verifier.Verify(ctx, token)
	var e *wire.Error
	switch {
	case err != nil:
		e = toWire(err, "")
	case c.Subject != s.user:
		e = wire.Errorf(wire.CodeUnauthorized, "the token is for another user; open a new connection for it")
	}
	plan, limit := "", 0
	if e == nil {
		plan, limit, e = s.srv.admit(ctx, c)
	}
	if e != nil {
		s.log.Info("auth frame rejected", "code", e.Code, "reason", e.Message, "err", err)
		s.enqueue(marshal(wire.ErrorFrame("", e)))
		return
	}
	s.mu.Lock()
	s.plan, s.limit, s.expires = plan, limit, c.Expires()
	s.sid, s.issued = c.SID, issued(c)
	s.scheduleExpiryLocked()
	s.mu.Unlock()
	s.log.Info("token refreshed", "plan", plan)
	s.sendHello(ctx)
}

// goaway starts draining: tell the client, refuse new requests, close when idle.
func (s *session) goaway() {
	s.mu.Lock()
	s.draining = true
	idle := s.active == 0
	s.mu.Unlock()
	s.enqueue(marshal(wire.ServerFrame{Type: wire.TypeGoaway, Reason: "shutdown"}))
	if idle {
		s.closeWith(nil, websocket.CloseGoingAway, "shutdown")
	}
}

// abort cancels every stream with cause; each sends its error frame, and the last one closes
// the connection since the session is draining.
func (s *session) abort(cause error) {
	s.mu.Lock()
	s.draining = true
	idle := s.active == 0
	for _, st := range s.streams {
		st.cancel(cause)
	}
	s.mu.Unlock()
	if idle {
		s.closeWith(nil, websocket.CloseGoingAway, "shutdown")
	}
}

// kill drops the connection without ceremony.
func (s *session) kill() {
	_ = s.conn.NetConn().Close()
}

// enqueue hands a frame to the writer, waiting for room; it drops the frame once the writer
// has stopped.
func (s *session) enqueue(b *frameBuf) {
	select {
	case s.send <- b:
		s.kick()
	case <-s.dead:
		putBuf(b)
	}
}

// dropQueued clears and pools the frames still queued once the writing has ended: a writer
// that failed leaves what was queued behind it, deltas among them, which would otherwise go to
// the collector uncleared with the session. Every stream has ended by then, so no content
// frame can be queued after it.
func (s *session) dropQueued() {
	for {
		select {
		case b := <-s.send:
			putBuf(b)
		default:
			return
		}
	}
}

// trySend queues b if there is room, without waiting.
func (s *session) trySend(b *frameBuf) bool {
	select {
	case s.send <- b:
		s.kick()
		return true
	default:
		return false
	}
}

// trySendInline is trySend for a stream's goroutine: it may write the frame itself
// (kickInline).
func (s *session) trySendInline(b *frameBuf) bool {
	select {
	case s.send <- b:
		s.kickInline()
		return true
	default:
		return false
	}
}

// closeWith makes the writer send what is queued, then final (when not nil), then a close
// frame with code and text, and stop. Only the first call counts.
func (s *session) closeWith(final *frameBuf, code int, text string) {
	used := false
	s.quitOnce.Do(func() {
		used = true
		s.final, s.closeCode, s.closeText = final, code, text
		close(s.quit)
	})
	if used {
		s.kick()
	}
	if !used && final != nil {
		putBuf(final)
	}
}
