package gateway

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	wire "github.com/codingplan/codingplan/shared"
)

// The writer sends what is queued in batches: it takes the frames already waiting (up to
// maxBatch), merges consecutive deltas of one stream into one delta frame (up to maxMerge bytes
// of text), and hands the whole batch to the kernel with one write. A client sees the same
// text, in the same order, in fewer frames; the server spends one system call per batch instead
// of one per frame, which is most of the relay's cost per chunk.
//
// maxBatch and maxMerge are variables only so that a benchmark can turn them down.
var (
	// maxBatch bounds the frames written with one write.
	maxBatch = 64
	// maxMerge bounds the text of one merged delta frame; 0 merges nothing.
	maxMerge = 16 << 10
)

const (
	// maxHeld is the most a batchConn buffers before it writes.
	maxHeld = 64 << 10
	// keepEncBuf is the largest delta encoding buffer the writer keeps between frames.
	keepEncBuf = 64 << 10
)

// writeLoop writes first (when not nil, a frame already taken from the queue), then what is
// queued, a due ping and, once quit is closed, the close: it is the
// connection's only writer while it runs, and it returns when there is nothing left to write
// (kick starts it again) or the connection is done (s.dead closed).
func (s *session) writeLoop(first *frameBuf) {
	w := &writer{s: s}
	defer w.done()
	if first != nil {
		if _, err := w.batch(first, cap(s.send)); err != nil {
			s.writeFailed(err)
			return
		}
	}
	for {
		s.wmu.Lock()
		ping := s.pingDue
		s.pingDue = false
		s.wmu.Unlock()
		if ping {
			if err := s.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(s.srv.cfg.WriteTimeout)); err != nil {
				s.writeFailed(err)
				return
			}
		}
		select {
		case <-s.quit:
			s.writeClose(w)
			return
		case b := <-s.send:
			// Bounded by the queue's size, so producers cannot keep the writer from pings and quit.
			if _, err := w.batch(b, cap(s.send)); err != nil {
				s.writeFailed(err)
				return
			}
			continue
		default:
		}
		if s.idleWriter() {
			return
		}
	}
}

// writeClose sends what was queued before the quit, then s.final and the close frame, and ends
// the writing for good. Streams still running may queue more, which the close frame cuts off.
func (s *session) writeClose(w *writer) {
	s.closing.Store(true)
	for n := len(s.send); n > 0; {
		took, err := w.batch(<-s.send, n)
		if err != nil {
			s.writeFailed(err)
			return
		}
		n -= took
	}
	if s.final != nil {
		if _, err := w.batch(s.final, 1); err != nil {
			s.writeFailed(err)
			return
		}
	}
	msg := websocket.FormatCloseMessage(s.closeCode, s.closeText)
	if err := s.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(s.srv.cfg.WriteTimeout)); err != nil {
		s.writeFailed(err)
		return
	}
	// Give the peer a moment to answer the close, so unread data does not turn our last frames
	// into a reset; then the reader's deadline ends the connection.
	_ = s.conn.SetReadDeadline(time.Now().Add(closeGrace))
	s.deadOnce.Do(func() { close(s.dead) })
}

// writeFailed ends the writing for good after a failed write.
func (s *session) writeFailed(err error) {
	s.log.Info("write failed", "reason", closeReason(err))
	_ = s.conn.NetConn().Close() // unblocks the reader
	s.deadOnce.Do(func() { close(s.dead) })
}

// writer is the state of one run of a session's writeLoop.
type writer struct {
	s    *session
	enc  []byte  // a delta frame being encoded; content, cleared after each write
	encp *[]byte // enc's holder from encPool, for done to put back
}

// batch writes first and the frames queued behind it with one write to the connection: at
// most take frames from the queue, first included, written as at most maxBatch frames. It
// returns how many frames it took.
func (w *writer) batch(first *frameBuf, take int) (int, error) {
	s := w.s
	s.batch.hold()
	_ = s.conn.SetWriteDeadline(time.Now().Add(s.srv.cfg.WriteTimeout))
	taken, written, cur := 1, 0, first
	deltas := false
	var err error
	for cur != nil {
		deltas = deltas || cur.stream != ""
		var next *frameBuf
		for err == nil && taken < take && written+1 < maxBatch {
			select {
			case next = <-s.send:
				taken++
			default:
			}
			if next == nil || !mergeable(cur, next) {
				break
			}
			cur.b = wire.AppendClear(cur.b, next.b)
			putBuf(next)
			next = nil
		}
		if err == nil {
			err = w.write(cur)
			written++
		} else {
			putBuf(cur)
		}
		cur = next
	}
	if err == nil && deltas {
		// Behind the output: its pong says the client read it (see slow.go).
		err = s.sendProbe()
	}
	if ferr := s.batch.flush(); err == nil {
		err = ferr
	}
	return taken, err
}

// mergeable reports whether next can be appended to cur: both deltas of one suggestion of one
// stream, and the text stays within maxMerge.
func mergeable(cur, next *frameBuf) bool {
	return cur.stream != "" && next.stream == cur.stream && next.index == cur.index && len(cur.b)+len(next.b) <= maxMerge
}

// write sends one frame and pools its buffer.
func (w *writer) write(b *frameBuf) error {
	defer putBuf(b)
	data := b.b
	if b.stream != "" {
		w.encode(b)
		data = w.enc
	}
	err := w.s.conn.WriteMessage(websocket.TextMessage, data)
	if b.stream != "" {
		clear(w.enc)
		if cap(w.enc) > keepEncBuf {
			w.enc = nil
		}
	}
	return err
}

// encode writes b's delta frame into w.enc. Room for the frame is made first, with a margin
// for escapes, so that append does not leave a part of the frame in an array it outgrew; if
// it grows anyway, the array it left is cleared.
func (w *writer) encode(b *frameBuf) {
	if w.encp == nil {
		w.encp = encPool.Get().(*[]byte)
		w.enc = *w.encp
	}
	if need := 2*(len(b.b)+len(b.stream)) + 64; cap(w.enc) < need {
		clear(w.enc[:cap(w.enc)])
		w.enc = make([]byte, 0, need)
	}
	old := w.enc[:cap(w.enc)]
	w.enc = wire.AppendDelta(w.enc[:0], b.stream, b.index, b.b)
	if cap(w.enc) != cap(old) {
		clear(old)
	}
}

// done clears what the writer still holds and pools its buffer.
func (w *writer) done() {
	clear(w.enc[:cap(w.enc)])
	if w.encp != nil && cap(w.enc) <= keepEncBuf {
		*w.encp = w.enc[:0]
		encPool.Put(w.encp)
	}
	w.enc, w.encp = nil, nil
}

// encPool holds the writers' delta encoding buffers, cleared: a writer runs only while there is
// something to write, and its buffer outlives it here.
var encPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// batchConn is the session's network connection. Between hold and flush it gathers writes in a
// buffer and sends them with one write to the network; otherwise writes go straight through.
// Control frames that the reader goroutine writes (pongs) while the writer holds go out with
// the writer's batch.
type batchConn struct {
	net.Conn
	raw   syscall.RawConn  // for unsentBytes; nil when the connection has none
	probe func(fd uintptr) // c.countUnsent, made once: a method value passed each time would allocate
	outq  int32            // what probe found
	oerr  error

	mu          sync.Mutex
	holding     bool
	buf         *[]byte // from heldPool while holding; content, cleared before it is pooled
	deadline    time.Time
	setDeadline bool // a write deadline arrived while holding
}

var heldPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// hold makes writes gather until flush.
func (c *batchConn) hold() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.holding = true
	c.mu.Unlock()
}

// flush writes what was gathered since hold and lets writes through again.
func (c *batchConn) flush() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.writeHeldLocked()
	c.holding = false
	if c.buf != nil {
		heldPool.Put(c.buf)
		c.buf = nil
	}
	return err
}

// writeHeldLocked applies the deadline set while holding and writes the buffer. The buffer is
// emptied and cleared whatever happens: it goes back to a pool shared by every connection.
func (c *batchConn) writeHeldLocked() error {
	var err error
	if c.setDeadline {
		c.setDeadline = false
		err = c.Conn.SetWriteDeadline(c.deadline)
	}
	if c.buf == nil || len(*c.buf) == 0 {
		return err
	}
	if err == nil {
		_, err = c.Conn.Write(*c.buf)
	}
	clear(*c.buf)
	*c.buf = (*c.buf)[:0]
	return err
}

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.holding {
		return c.Conn.Write(p)
	}
	if c.buf == nil {
		c.buf = heldPool.Get().(*[]byte)
	}
	if len(*c.buf)+len(p) > maxHeld {
		if err := c.writeHeldLocked(); err != nil {
			return 0, err
		}
		if len(p) > maxHeld {
			return c.Conn.Write(p)
		}
	}
	*c.buf = wire.AppendClear(*c.buf, p)
	return len(p), nil
}

// SetWriteDeadline applies at once, or while holding, to the flush.
func (c *batchConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.holding {
		return c.Conn.SetWriteDeadline(t)
	}
	c.deadline, c.setDeadline = t, true
	return nil
}

// hijacker gives the websocket upgrader the hijacked connection wrapped in a batchConn.
type hijacker struct {
	http.ResponseWriter
	conn *batchConn
}

func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	return h.wrap(c), rw, nil
}

// wrap makes c the session's batchConn.
func (h *hijacker) wrap(c net.Conn) *batchConn {
	h.conn = &batchConn{Conn: c}
	if sc, ok := c.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			h.conn.raw = raw
			h.conn.probe = h.conn.countUnsent
		}
	}
	return h.conn
}

// drained reports whether everything written to the connection has been sent and acknowledged,
// so that a small write cannot block. False when it cannot tell. Only the writer calls it.
func (c *batchConn) drained() bool {
	if c == nil || c.raw == nil {
		return false
	}
	c.outq, c.oerr = 0, errNoUnsentCount
	if err := c.raw.Control(c.probe); err != nil {
		return false
	}
	return c.oerr == nil && c.outq == 0
}

func (c *batchConn) countUnsent(fd uintptr) { c.oerr = unsentBytes(fd, &c.outq) }

// frameBuf is an outgoing frame, pooled. For a delta, stream is the stream's id, index the
// suggestion's and b the raw text, which the writer encodes (see encode); otherwise b is the
// encoded frame.
type frameBuf struct {
	b      []byte
	stream string
	index  int
}

var bufPool = sync.Pool{New: func() any { return &frameBuf{b: make([]byte, 0, 512)} }}

func getBuf() *frameBuf { return bufPool.Get().(*frameBuf) }

// putBuf clears a buffer (it held content) and pools it unless it grew large.
func putBuf(f *frameBuf) {
	clear(f.b)
	if cap(f.b) > 64<<10 {
		return
	}
	f.b, f.stream, f.index = f.b[:0], "", 0
	bufPool.Put(f)
}

// marshal encodes a non-delta frame into a pooled buffer.
func marshal(f wire.ServerFrame) *frameBuf {
	data, err := wire.Marshal(f)
	if err != nil {
		// ServerFrame has no field that can fail to encode.
		panic(fmt.Sprintf("gateway: marshal %s frame: %v", f.Type, err))
	}
	b := getBuf()
	b.b = append(b.b, data...)
	clear(data)
	return b
}
