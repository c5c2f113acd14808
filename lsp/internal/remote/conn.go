package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/codingplan/codingplan/lsp/internal/lspx"
	wire "github.com/codingplan/codingplan/shared"
)

// conn is one websocket. Its reader goroutine routes frames to streams. Frames to send go
// into out, which never blocks (requests are bounded by slots, and each stream adds at most
// one cancel), and one goroutine at a time writes them: the stream that queued a frame when
// nobody was writing writes it itself, and every frame queued meanwhile, so a request goes out
// without waking another goroutine; a stream that finds a write in progress leaves its frame
// to that writer and does not wait. The writer goroutine writes frames queued while c.mu is
// held (auth), pings, and the close.
type conn struct {
	c        *Client
	ws       *websocket.Conn
	maxFrame int
	slots    chan struct{} // one per stream in flight, up to the hello's max_in_flight

	mu       sync.Mutex
	token    wire.Secret // the last token sent on this connection
	streams  map[string]*stream
	out      [][]byte
	flushing bool // a goroutine is writing out's frames
	handoff  bool // a stream left the flushing to the writer goroutine
	broken   bool // a write failed: the connection is closing
	draining bool
	reason   error // why the connection is closing, for its streams
	ended    bool

	kick      chan struct{} // cap 1: the writer goroutine should flush out, or draining began
	closing   chan struct{} // closed to ask the writer to close the connection
	closeOnce sync.Once
	dead      chan struct{} // closed when the reader has ended
	goaway    chan time.Duration
}

func newConn(c *Client, ws *websocket.Conn, token wire.Secret, limits *wire.Limits) *conn {
	maxFrame, inFlight := wire.MaxFrameBytes, wire.MaxInFlight
	if limits != nil {
		if limits.MaxFrameBytes > 0 {
			maxFrame = min(maxFrame, limits.MaxFrameBytes)
		}
		if limits.MaxInFlight > 0 {
			inFlight = min(inFlight, limits.MaxInFlight)
		}
	}
	return &conn{
		c:        c,
		ws:       ws,
		maxFrame: maxFrame,
		slots:    make(chan struct{}, inFlight),
		token:    token,
		streams:  map[string]*stream{},
		kick:     make(chan struct{}, 1),
		closing:  make(chan struct{}),
		dead:     make(chan struct{}),
		goaway:   make(chan time.Duration, 1),
	}
}

// stream is one request's inbox, filled by the reader.
type stream struct {
	last  int // the index of the suggestion whose done ends the stream: n-1
	mu    sync.Mutex
	items []item
	err   error
	ready chan struct{} // cap 1
	// first holds the items of a short answer (a delta and done), so that the inbox does not
	// grow on the hot path.
	first [2]item
}

// item is a frame for a stream; a delta's text is in text, an array of its own that Stream
// clears once onDelta has seen it.
type item struct {
	frame wire.ServerFrame
	text  []byte
}

func newStream() *stream {
	st := &stream{ready: make(chan struct{}, 1)}
	st.items = st.first[:0]
	return st
}

func (st *stream) push(it item) {
	st.mu.Lock()
	st.items = append(st.items, it)
	st.mu.Unlock()
	select {
	case st.ready <- struct{}{}:
	default:
	}
}

func (st *stream) fail(err error) {
	st.mu.Lock()
	st.err = err
	st.mu.Unlock()
	select {
	case st.ready <- struct{}{}:
	default:
	}
}

func (st *stream) take(buf []item) ([]item, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	buf = append(buf[:0], st.items...)
	clear(st.items)
	st.items = st.items[:0]
	return buf, st.err
}

// Stream is StreamEach for one suggestion: onDelta gets the text of suggestion 0 only.
func (c *Client) Stream(ctx context.Context, req wire.ClientFrame, onDelta func(text []byte)) (wire.ServerFrame, error) {
	return c.StreamEach(ctx, req, func(index int, text []byte) {
		if index == 0 && onDelta != nil {
			onDelta(text)
		}
	})
}

// StreamEach sends req as a new stream and relays its answer: onDelta gets each delta's
// suggestion index (0 unless req asks for several, docs/protocol.md "Several suggestions")
// and text (a slice valid during the call only: it is cleared after), in order, and
// StreamEach returns the done frame that ends the stream. It returns a *wire.Error for the
// backend's error frame (rate_limited with RetryAfterMS, ...), ErrDisconnected or
// ErrSignedOut (wrapped) when there is no connection or it breaks, and ctx.Err() (wrapped) as
// soon as ctx ends, after queueing a cancel frame for the stream. req's Type and ID are set
// here.
func (c *Client) StreamEach(ctx context.Context, req wire.ClientFrame, onDelta func(index int, text []byte)) (wire.ServerFrame, error) {
	cn, err := c.connection(ctx)
	if err != nil {
		return wire.ServerFrame{}, err
	}
	select {
	case cn.slots <- struct{}{}:
	case <-ctx.Done():
		return wire.ServerFrame{}, fmt.Errorf("remote: waiting for a free stream: %w", ctx.Err())
	case <-cn.dead:
		return wire.ServerFrame{}, fmt.Errorf("%w: connection lost", ErrDisconnected)
	}
	defer func() { <-cn.slots }()

	c.mu.Lock()
	c.nextID++
	n := c.nextID
	c.mu.Unlock()
	var idb [1 + 13]byte // "c" and a uint64 in base 36
	id := string(strconv.AppendUint(append(idb[:0], 'c'), n, 36))
	req.Type, req.ID = wire.TypeRequest, id
	data, ok := wire.AppendRequest(nil, req) // a completion, without reflection
	if !ok {
		if data, err = wire.Marshal(req); err != nil {
			return wire.ServerFrame{}, fmt.Errorf("remote: encode request: %w", err)
		}
	}
	if len(data) > cn.maxFrame {
		return wire.ServerFrame{}, wire.Errorf(wire.CodeTooLarge, "the request is %d bytes, the backend takes %d", len(data), cn.maxFrame)
	}

	st := newStream()
	if req.Op == wire.OpCompletion && req.Completion != nil {
		st.last = req.Completion.Suggestions() - 1
	}
	if err := cn.open(id, st); err != nil {
		return wire.ServerFrame{}, err
	}
	cn.send(data)
	c.streamStarted(n)
	defer c.streamEnded(n)

	var taken [2]item
	items := taken[:0]
	defer func() {
		for _, it := range items {
			clear(it.text) // deltas not relayed: the stream ended first
		}
	}()
	for {
		select {
		case <-ctx.Done():
			cn.cancel(id)
			return wire.ServerFrame{}, fmt.Errorf("remote: stream canceled: %w", ctx.Err())
		case <-st.ready:
		}
		var end error
		items, end = st.take(items)
		for i := range items {
			f := items[i].frame
			switch f.Type {
			case wire.TypeDelta:
				if onDelta != nil {
					onDelta(f.Index, items[i].text)
				}
				clear(items[i].text)
				if ctx.Err() != nil { // onDelta may end the stream early
					cn.cancel(id)
					return wire.ServerFrame{}, fmt.Errorf("remote: stream canceled: %w", ctx.Err())
				}
			case wire.TypeDone:
				if f.Index < st.last {
					continue // a suggestion ended; the stream goes on
				}
				c.noteStreamDone()
				return f, nil
			case wire.TypeError:
				return wire.ServerFrame{}, f.AsError()
			}
		}
		if end != nil {
			return wire.ServerFrame{}, end
		}
	}
}

// connection returns the connection for a new stream. With none, it fails at once, except
// while one is being set up after start or sign-in: then it waits up to ConnectWait.
func (c *Client) connection(ctx context.Context) (*conn, error) {
	var deadline <-chan time.Time
	for {
		c.mu.Lock()
		cn, token, state, msg, starting, changed := c.cur, c.token, c.link.state, c.link.message, c.starting, c.changed
		rejected := token != "" && token == c.rejected
		c.mu.Unlock()
		switch {
		case token == "":
			return nil, ErrSignedOut
		case rejected:
			return nil, fmt.Errorf("%w: %s", ErrSignedOut, msg)
		case cn != nil:
			return cn, nil
		case !starting || state != lspx.StateConnecting:
			return nil, fmt.Errorf("%w: %s", ErrDisconnected, msg)
		}
		if deadline == nil {
			t, expired := c.cfg.Clock.NewTimer(c.cfg.ConnectWait)
			defer t.Stop()
			deadline = expired
		}
		select {
		case <-changed:
		case <-deadline:
			return nil, fmt.Errorf("%w: still connecting", ErrDisconnected)
		case <-ctx.Done():
			return nil, fmt.Errorf("remote: waiting for the connection: %w", ctx.Err())
		}
	}
}

// open registers stream id.
func (cn *conn) open(id string, st *stream) error {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.ended || cn.draining {
		reason := cn.reason
		if reason == nil || cn.draining {
			reason = ErrDisconnected
		}
		return fmt.Errorf("%w: connection closing", reason)
	}
	cn.streams[id] = st
	return nil
}

// cancel forgets stream id and tells the backend, unless the stream already ended.
func (cn *conn) cancel(id string) {
	cn.mu.Lock()
	if _, ok := cn.streams[id]; !ok {
		cn.mu.Unlock()
		return
	}
	delete(cn.streams, id)
	send := !cn.ended
	cn.closeIfDrainedLocked()
	cn.mu.Unlock()
	if send {
		data, _ := wire.Marshal(wire.ClientFrame{Type: wire.TypeCancel, ID: id})
		cn.send(data)
	}
}

// sendAuthLocked queues an auth frame; c.mu is held.
func (cn *conn) sendAuthLocked(token wire.Secret) {
	data, err := wire.Marshal(wire.ClientFrame{Type: wire.TypeAuth, Token: token})
	if err != nil {
		return
	}
	cn.mu.Lock()
	cn.token = token
	cn.queueLocked(data)
	cn.mu.Unlock()
}

// queueLocked queues a frame for the writer goroutine; cn.mu is held.
func (cn *conn) queueLocked(data []byte) {
	cn.out = append(cn.out, data)
	cn.c.poke(cn.kick)
}

// maxInlineWrite bounds a frame a stream writes itself. A larger one (an edit request with a
// big selection) is left to the writer goroutine: on a slow link its write could hold the
// stream past its context's end.
const maxInlineWrite = 32 << 10

// send queues a frame and, unless another goroutine is writing (which then writes this frame
// too), writes the queued frames on this goroutine, leaving large ones to the writer goroutine.
func (cn *conn) send(data []byte) {
	cn.mu.Lock()
	cn.out = append(cn.out, data)
	if cn.flushing || cn.broken {
		cn.mu.Unlock()
		return
	}
	cn.flushing = true
	cn.mu.Unlock()
	cn.flush(true)
}

// flush writes queued frames until there are none left; the caller has set flushing, which
// flush clears when it stops. Inline (on a stream's goroutine), it stops at a large frame and
// hands the rest to the writer goroutine, flushing still set for it.
func (cn *conn) flush(inline bool) {
	var batch [][]byte
	for {
		cn.mu.Lock()
		if len(cn.out) == 0 || cn.broken {
			cn.flushing = false
			cn.mu.Unlock()
			return
		}
		n := len(cn.out)
		if inline {
			n = slices.IndexFunc(cn.out, func(d []byte) bool { return len(d) > maxInlineWrite })
			if n == 0 {
				cn.handoff = true
				cn.c.poke(cn.kick)
				cn.mu.Unlock()
				return
			}
			if n < 0 {
				n = len(cn.out)
			}
		}
		batch = append(batch[:0], cn.out[:n]...)
		queued := len(cn.out)
		cn.out = append(cn.out[:0], cn.out[n:]...)
		clear(cn.out[len(cn.out):queued]) // drop the moved frames' old places
		cn.mu.Unlock()
		for i, data := range batch {
			_ = cn.ws.SetWriteDeadline(time.Now().Add(cn.c.cfg.WriteTimeout))
			err := cn.ws.WriteMessage(websocket.TextMessage, data)
			clear(data) // a request's content: the websocket has its own masked copy
			batch[i] = nil
			if err != nil {
				cn.mu.Lock()
				cn.broken, cn.flushing, cn.handoff, cn.out = true, false, false, nil
				cn.mu.Unlock()
				_ = cn.ws.Close() // the reader ends and fails the streams
				return
			}
		}
	}
}

// drainLocked stops new streams on the connection and closes it once the running ones end.
func (cn *conn) drainLocked() {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.draining {
		return
	}
	cn.draining = true
	cn.c.poke(cn.kick) // the writer arms the drain timeout
	cn.closeIfDrainedLocked()
}

func (cn *conn) closeIfDrainedLocked() {
	if cn.draining && len(cn.streams) == 0 {
		cn.closeReasonLocked(ErrDisconnected)
	}
}

// close asks the writer to close the connection; running streams fail with reason.
func (cn *conn) close(reason error) {
	cn.mu.Lock()
	cn.closeReasonLocked(reason)
	cn.mu.Unlock()
}

func (cn *conn) closeReasonLocked(reason error) {
	if cn.reason == nil {
		cn.reason = reason
	}
	cn.closeOnce.Do(func() { close(cn.closing) })
}

// readLoop reads frames until the connection fails, then fails the streams left.
func (cn *conn) readLoop() {
	defer cn.c.connWG.Done()
	timeout := cn.c.cfg.ReadTimeout
	// The deadline moves on with each frame, but at most once a second (timeout/50 when that
	// is shorter): a stream's frames come microseconds apart, and each move resets a timer.
	var extended time.Time
	extend := func() error {
		now := time.Now()
		if now.Sub(extended) < min(time.Second, timeout/50) {
			return nil
		}
		extended = now
		return cn.ws.SetReadDeadline(now.Add(timeout))
	}
	cn.ws.SetPongHandler(func(string) error { return extend() })
	var cause error
	var data []byte // one buffer for every frame, cleared once decoded: frames carry output
	for {
		var err error
		data, err = cn.readFrame(data[:0])
		if err != nil {
			clear(data[:cap(data)])
			cause = err
			break
		}
		_ = extend()
		// A delta as the backend writes it is decoded without reflection, its text straight
		// into the bytes Stream hands to onDelta; any other frame through DecodeServer.
		if id, text, ok := wire.DecodeDelta(data); ok {
			deliver(cn, id, item{frame: wire.ServerFrame{Type: wire.TypeDelta}, text: text})
			clear(data)
			continue
		}
		f, err := wire.DecodeServer(data)
		clear(data)
		if err != nil {
			cn.c.log.Warn("ignoring a malformed frame from the backend", "err", err)
			continue
		}
		cn.handle(f)
	}
	cn.end(cause)
}

// readFrame reads the next message into buf (grown with wire.Grow, which clears what it
// leaves behind) and returns it.
func (cn *conn) readFrame(buf []byte) ([]byte, error) {
	_, r, err := cn.ws.NextReader()
	if err != nil {
		return buf, err
	}
	for {
		buf = wire.Grow(buf, 512)
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case err == io.EOF:
			return buf, nil
		case err != nil:
			return buf, err
		}
	}
}

func (cn *conn) end(cause error) {
	cn.mu.Lock()
	cn.ended = true
	reason := cn.reason
	if reason == nil {
		reason = ErrDisconnected
	}
	streams := cn.streams
	cn.streams = nil
	cn.closeReasonLocked(reason)
	cn.mu.Unlock()
	_ = cn.ws.Close()
	for _, st := range streams {
		st.fail(fmt.Errorf("%w: connection closed", reason))
	}
	if cause != nil && !errors.Is(reason, ErrSignedOut) && !websocket.IsCloseError(cause, websocket.CloseNormalClosure, websocket.CloseGoingAway) {
		cn.c.log.Debug("backend connection ended", "err", cause)
	}
	c := cn.c
	c.mu.Lock()
	delete(c.conns, cn)
	if c.cur == cn {
		c.cur = nil
		c.broadcastLocked()
	}
	c.mu.Unlock()
	close(cn.dead)
}

func (cn *conn) handle(f wire.ServerFrame) {
	c := cn.c
	switch f.Type {
	case wire.TypeHello: // again after an accepted auth frame, a plan or a model change
		c.mu.Lock()
		c.updatePlanLocked(f.Plan)
		c.updateModelsLocked(f.Models)
		cn.mu.Lock()
		accepted := cn.token
		cn.mu.Unlock()
		if c.rejected == accepted {
			c.rejected = ""
		}
		if c.cur == cn && c.link.state != lspx.StateReady {
			c.setLinkLocked(link{state: lspx.StateReady, message: "connected"})
		}
		c.mu.Unlock()
	case wire.TypeQueued:
		c.mu.Lock()
		c.updatePlanLocked(f.Plan)
		c.mu.Unlock()
	case wire.TypeDelta:
		deliver(cn, f.ID, item{frame: wire.ServerFrame{Type: wire.TypeDelta, Index: f.Index}, text: []byte(f.Text)})
	case wire.TypeDone:
		deliver(cn, f.ID, item{frame: f})
	case wire.TypeError:
		if f.ID != "" {
			c.noteStreamError(f.AsError())
			deliver(cn, f.ID, item{frame: f})
			return
		}
		cn.connectionError(f.AsError())
	case wire.TypeGoaway:
		c.mu.Lock()
		if c.cur == cn {
			c.cur = nil
			c.broadcastLocked()
		}
		c.mu.Unlock()
		cn.mu.Lock()
		cn.draining = true
		cn.closeIfDrainedLocked()
		cn.mu.Unlock()
		cn.c.poke(cn.kick)
		select {
		case cn.goaway <- time.Duration(f.RetryAfterMS) * time.Millisecond:
		default:
		}
	}
}

// connectionError handles an error frame that ends no stream: a token the backend no longer
// accepts, or a complaint about the connection.
func (cn *conn) connectionError(e *wire.Error) {
	c := cn.c
	switch e.Code {
	case wire.CodeTokenExpired, wire.CodeUnauthorized:
		out := authOutcome(e)
		cn.mu.Lock()
		token := cn.token
		cn.mu.Unlock()
		c.mu.Lock()
		if c.token == token {
			c.rejected = token
		}
		c.setLinkLocked(link{state: out.state, message: out.message, reason: out.reason})
		c.mu.Unlock()
		c.tellRefused(token, e.Code)
	default:
		c.log.Warn("error from the backend", "code", string(e.Code), "message", wire.Clip(e.Message, clipMessage))
	}
}

// deliver routes a frame to stream id; frames of streams no longer here (cancelled) are
// dropped, their text cleared. id may be the bytes of a frame (a map lookup with string(id)
// allocates nothing).
func deliver[S string | []byte](cn *conn, id S, it item) {
	cn.mu.Lock()
	st := cn.streams[string(id)]
	if st != nil && (it.frame.Type == wire.TypeDone && it.frame.Index >= st.last || it.frame.Type == wire.TypeError) {
		delete(cn.streams, string(id))
		cn.closeIfDrainedLocked()
	}
	cn.mu.Unlock()
	if st == nil {
		clear(it.text)
		return
	}
	st.push(it)
}

// writeLoop writes frames queued for it, pings, and the close; it arms the drain timeout.
func (cn *conn) writeLoop() {
	defer cn.c.connWG.Done()
	cfg := &cn.c.cfg
	ping, pings := cfg.Clock.NewTicker(cfg.PingInterval)
	defer ping.Stop()
	var drain <-chan time.Time
	for {
		select {
		case <-cn.kick:
			cn.mu.Lock()
			draining := cn.draining
			write := cn.handoff || !cn.flushing && !cn.broken && len(cn.out) > 0
			cn.handoff, cn.flushing = false, cn.flushing || write
			cn.mu.Unlock()
			if write {
				cn.flush(false)
			}
			if draining && drain == nil {
				t, expired := cfg.Clock.NewTimer(cfg.DrainTimeout)
				defer t.Stop()
				drain = expired
			}
		case <-pings:
			if err := cn.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(cfg.WriteTimeout)); err != nil {
				_ = cn.ws.Close()
				return
			}
		case <-drain:
			cn.close(fmt.Errorf("%w: the backend is going away", ErrDisconnected))
		case <-cn.closing:
			msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
			_ = cn.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
			_ = cn.ws.Close()
			return
		case <-cn.dead:
			return
		}
	}
}
