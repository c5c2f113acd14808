package gateway

import (
	"errors"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/codingplan/codingplan/shared/clock"
)

// Idle connections. Editors keep their websocket open all day, so most of a node's connections
// send nothing for minutes, and what one costs while idle sets how many a node holds. An idle
// session holds its reader goroutine (parked in a read, its small gorilla read buffer), a few
// timers and its bookkeeping, and nothing else:
//   - the HTTP handler returns after the upgrade (ServeHTTP starts run on a goroutine of its
//     own), which lets net/http's buffers, request and the handler's deep stack go;
//   - no writer goroutine waits for frames: kick starts one when a frame is queued, a ping is due
//     or the close begins, and it returns once the queue is empty. At most one runs at a time,
//     so it stays the connection's only writer (gorilla allows one writer, plus WriteControl
//     from anywhere, which the reader's pong answers use);
//   - keepalive pings come from one pinger per Server (a wheel of slots, one goroutine), not
//     from a ticker per connection;
//   - the read loop's frame buffer and the writer's websocket buffer come from pools, cleared
//     before they go back, and are held only while a frame is read or written.
// docs/benchmarks.md ("Idle connections") has the figures, scripts/bench-idle.sh measures them.

// kick makes sure a writer runs to send what is queued, a due ping or the close. Whoever
// queues a frame calls it after the frame is in the queue; the writer leaves only after seeing
// the queue empty under wmu (idleWriter), so no frame is left without a writer.
func (s *session) kick() {
	if s.claimWriter() {
		s.startWriter(nil)
	}
}

// startWriter runs writeLoop on a goroutine of its own, for the caller that claimed the writer;
// first, when not nil, is a frame the caller took from the queue.
func (s *session) startWriter(first *frameBuf) {
	go func() { // owned by run, which waits for s.writers
		defer s.writers.Done()
		s.writeLoop(first)
	}()
}

// maxInline bounds the text of the frame a stream writes itself (kickInline): escaped at worst
// six bytes for one (\u00XX), with the frame's fields it stays under the smallest send buffer
// Linux gives a socket (4 KiB), so that the write cannot block even if the client stopped
// reading. Larger frames go to a writer goroutine, whose blocked write a slow consumer's
// streams do not wait for.
const maxInline = 512

// kickInline is kick for a stream's goroutine that has just queued a frame. When no writer runs
// and the socket holds nothing unsent, it writes the frame at the head of the queue itself, if
// small (maxInline): into an empty socket such a write cannot block, and under load every
// hand-off to another goroutine waits for a CPU, while the first delta of a stream is what the
// user waits for. Whatever else is queued goes to a writer goroutine, as kick would.
func (s *session) kickInline() {
	if !s.claimWriter() {
		return
	}
	if !s.batch.drained() {
		s.startWriter(nil)
		return
	}
	var b *frameBuf
	select {
	case b = <-s.send:
	default:
		s.afterInline(nil) // another writer took it meanwhile
		return
	}
	if len(b.b) > maxInline {
		s.startWriter(b)
		return
	}
	w := writer{s: s}
	_, err := w.batch(b, 1)
	w.done()
	s.afterInline(err)
}

// afterInline ends a write made on the caller's goroutine as the writer (kickInline,
// pingNow): after err the writing has ended for good; otherwise the caller stops being the
// writer, or hands the role to a writer goroutine when more is due meanwhile.
func (s *session) afterInline(err error) {
	switch {
	case err != nil:
		s.writeFailed(err)
		s.writers.Done()
	case s.idleWriter():
		s.writers.Done()
	default:
		s.startWriter(nil)
	}
}

// claimWriter makes the caller the writer when none runs; then it must run writeLoop and call
// s.writers.Done.
func (s *session) claimWriter() bool {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.writing {
		return false
	}
	s.writing = true
	s.writers.Add(1)
	return true
}

// idleWriter reports whether the writer may stop, and if so, lets the next kick start one.
// After the writing ended for good (s.dead), writing stays set and no writer starts again.
func (s *session) idleWriter() bool {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.pingDue || len(s.send) > 0 || closed(s.quit) {
		return false
	}
	s.writing = false
	return true
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// pingNow has a keepalive ping sent. When no writer runs and the socket has nothing unsent
// (so a write cannot block), the caller, the pinger, writes it itself: no goroutine, no
// allocation, no deadline timer for an idle connection's ping. Otherwise the writer sends it
// (kick).
func (s *session) pingNow() {
	s.wmu.Lock()
	claimed := !s.writing
	if claimed {
		s.writing = true
		s.writers.Add(1)
	} else {
		s.pingDue = true // the running writer sends it before it stops (idleWriter)
	}
	s.wmu.Unlock()
	if !claimed {
		return
	}
	if !s.batch.drained() {
		s.wmu.Lock()
		s.pingDue = true
		s.wmu.Unlock()
		s.startWriter(nil)
		return
	}
	// No deadline: into a drained socket the write cannot block, and the one the last write set
	// has passed by now. Clearing it arms no timer; every other write sets its own.
	_ = s.batch.SetWriteDeadline(time.Time{})
	_, err := s.batch.Write(pingFrame)
	s.afterInline(err)
}

// pingFrame is a websocket ping with no payload, as a server sends it (unmasked). The pinger
// writes it in one write to the connection, which gorilla's own writes cannot interleave with
// (net.Conn writes are serialized); it holds the writer's role meanwhile, so no data frame is
// being written.
var pingFrame = []byte{0x80 | websocket.PingMessage, 0}

// pinger sends every session of a Server its keepalive pings: one goroutine for the whole
// Server, waking once a tick (PingInterval/pingSlots), pings the sessions of one slot of a
// wheel. A session joins the slot that comes round last, so it is pinged every PingInterval,
// the first time about PingInterval after it opened. One wake-up per tick for a slot's
// sessions, and their pongs coming back together, cost far less than a timer per session: on
// a VM where waking a thread costs tens of microseconds, that was most of an idle node's CPU.
// The goroutine runs only while the Server has sessions.
type pinger struct {
	clock clock.Clock
	tick  time.Duration

	mu      sync.Mutex
	slots   [pingSlots]map[*session]struct{}
	cur     int           // the slot whose turn comes at the next tick
	n       int           // sessions in the wheel
	stop    chan struct{} // closed when the last session leaves; nil when the loop is not running
	running sync.WaitGroup
}

// pingSlots is the wheel's size: the pings of PingInterval are spread over this many ticks.
const pingSlots = 20

func newPinger(c clock.Clock, every time.Duration) *pinger {
	p := &pinger{clock: c, tick: max(every/pingSlots, time.Millisecond)}
	for i := range p.slots {
		p.slots[i] = map[*session]struct{}{}
	}
	return p
}

// add puts s in the wheel, starting the loop if it is not running.
func (p *pinger) add(s *session) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s.pingSlot = (p.cur + pingSlots - 1) % pingSlots
	p.slots[s.pingSlot][s] = struct{}{}
	p.n++
	if p.stop == nil {
		p.stop = make(chan struct{})
		p.running.Add(1)
		go p.loop(p.stop) // owned by the pinger: wait waits for it
	}
}

// remove takes s out of the wheel; the loop ends with the last session.
func (p *pinger) remove(s *session) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.slots[s.pingSlot][s]; !ok {
		return
	}
	delete(p.slots[s.pingSlot], s)
	if p.n--; p.n == 0 {
		close(p.stop)
		p.stop = nil
	}
}

// wait waits for the loop to end (after the last session left).
func (p *pinger) wait() { p.running.Wait() }

func (p *pinger) loop(stop <-chan struct{}) {
	defer p.running.Done()
	t, ticks := p.clock.NewTicker(p.tick)
	defer t.Stop()
	var due []*session
	for {
		select {
		case <-stop:
			return
		case <-ticks:
		}
		p.mu.Lock()
		for s := range p.slots[p.cur] {
			due = append(due, s)
		}
		p.cur = (p.cur + 1) % pingSlots
		p.mu.Unlock()
		for _, s := range due {
			s.pingNow()
		}
		clear(due)
		due = due[:0]
	}
}

var errNoUnsentCount = errors.New("no count of unsent bytes on this platform")
