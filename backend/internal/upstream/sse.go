package upstream

import (
	"bytes"
	"fmt"
	"io"

	wire "github.com/codingplan/codingplan/shared"
)

// MaxLineBytes bounds one SSE line and one event's data. A provider line past it fails the
// stream with ErrFailed; lines over bufio.Scanner's 64 KiB default are fine.
const MaxLineBytes = 1 << 20

// sseReader splits a server-sent event stream (the WHATWG EventSource format) into events.
// Lines end with LF, CRLF or a lone CR; comment lines (starting with ':') and the id and
// retry fields are skipped; the data lines of one event are joined with '\n'. It buffers the
// stream itself, as bufio.Reader does, so that a line is one slice of its buffer, and keeps
// every buffer between events: reading an event allocates nothing once warm. The data of an
// event with one data line (what the model APIs send) is not copied: it stays in buf, which
// fill then compacts around it.
type sseReader struct {
	rd     io.Reader
	max    int
	buf    []byte
	r, w   int   // unread bytes are buf[r:w]
	err    error // the reader's error, returned once buf is drained
	skipLF bool  // the last line ended with a CR: a following LF belongs to it

	event    []byte // the current event's name
	data     []byte // the current event's data, when not in buf
	inBuf    bool   // the current event's data is buf[ds:de], its only data line
	ds, de   int
	ls       int    // where the line last returned by line starts in buf
	dataSeen bool   // the current event had a data line (maybe empty)
	name     []byte // name of the event last returned, valid until the next call

	// beforeRead, when set, runs before each read of rd, which may wait for the stream:
	// the relay flushes its sink there.
	beforeRead func()
}

// sseBufferBytes is a model stream's starting buffer: room for a batch of events (see
// pacedConn), so that one read brings them all.
const sseBufferBytes = 8 << 10

func newSSEReader(rd io.Reader, max int) *sseReader { return newSSEReaderSize(rd, max, 4096) }

// newSSEReaderSize starts with a buffer of size bytes, which grows as needed.
func newSSEReaderSize(rd io.Reader, limit, size int) *sseReader {
	return &sseReader{rd: rd, max: limit, buf: make([]byte, max(size, 1))}
}

// next returns the next event's name (empty when the event has none, which means
// "message") and data. Both are valid until the next call. At the end of the stream it
// returns io.EOF (or the reader's error); an event not ended by a blank line is dropped, as
// the format says. A line or an event over the limit returns an error wrapping ErrFailed.
func (s *sseReader) next() (name, data []byte, err error) {
	s.data, s.inBuf = s.data[:0], false
	for {
		line, err := s.line()
		if err != nil {
			return nil, nil, err
		}
		if len(line) == 0 {
			if !s.dataSeen {
				s.event = s.event[:0]
				continue
			}
			// The name buffers swap: the event's name is returned, the other one reused.
			s.name, s.event, s.dataSeen = s.event, s.name[:0], false
			if s.inBuf {
				return s.name, s.buf[s.ds:s.de:s.de], nil
			}
			return s.name, s.data, nil
		}
		if line[0] == ':' {
			continue
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "data":
			if !s.dataSeen {
				// Keep the first line where it is: value ends the line, buf[ls:ls+len(line)].
				s.de = s.ls + len(line)
				s.ds = s.de - len(value)
				s.inBuf, s.dataSeen = true, true
				continue
			}
			if s.inBuf {
				s.data = wire.AppendClear(s.data[:0], s.buf[s.ds:s.de])
				s.inBuf = false
			}
			if len(s.data)+1+len(value) > s.max {
				return nil, nil, fmt.Errorf("%w: sse event longer than %d bytes", ErrFailed, s.max)
			}
			s.data = append(wire.Grow(s.data, 1+len(value)), '\n')
			s.data = append(s.data, value...)
		case "event":
			s.event = append(s.event[:0], value...)
		}
	}
}

// line returns the next line without its terminator, valid until the next call.
func (s *sseReader) line() ([]byte, error) {
	scanned := 0 // bytes of buf[r:w] known to hold no terminator
	for {
		if s.skipLF && s.r < s.w {
			if s.buf[s.r] == '\n' {
				s.r++
			}
			s.skipLF = false
		}
		if i := indexEOL(s.buf[s.r+scanned : s.w]); i >= 0 {
			end := s.r + scanned + i
			line := s.buf[s.r:end]
			s.ls = s.r
			if s.buf[end] == '\r' {
				if end+1 < s.w {
					if s.buf[end+1] == '\n' {
						end++
					}
				} else {
					s.skipLF = true
				}
			}
			s.r = end + 1
			if len(line) > s.max {
				return nil, s.tooLong()
			}
			return line, nil
		}
		scanned = s.w - s.r
		if scanned > s.max {
			return nil, s.tooLong()
		}
		if s.err != nil {
			// A last line without a terminator ends no event: drop it.
			return nil, s.err
		}
		s.fill()
	}
}

func (s *sseReader) tooLong() error {
	return fmt.Errorf("%w: sse line longer than %d bytes", ErrFailed, s.max)
}

// fill reads more of the stream, first moving unread bytes (and the current event's data
// when it is in buf) to the front of buf, growing it (up to the limit plus a margin) when it
// is full. When the data in buf would make it grow, the data is copied out instead.
func (s *sseReader) fill() {
	s.compact()
	if s.w == len(s.buf) && s.inBuf {
		s.data = wire.AppendClear(s.data[:0], s.buf[s.ds:s.de])
		s.inBuf = false
		s.compact()
	}
	if s.w == len(s.buf) {
		n := min(2*len(s.buf), s.max+2)
		if n <= len(s.buf) {
			n = len(s.buf) + 1
		}
		buf := make([]byte, n)
		copy(buf, s.buf[:s.w])
		clear(s.buf) // it held model output
		s.buf = buf
	}
	if s.beforeRead != nil {
		s.beforeRead()
	}
	// A reader may return 0, nil; give up after a few, as bufio does.
	for range 100 {
		n, err := s.rd.Read(s.buf[s.w:])
		s.w += n
		if err != nil {
			s.err = err
			return
		}
		if n > 0 {
			return
		}
	}
	s.err = io.ErrNoProgress
}

// compact moves what must be kept of buf to its front.
func (s *sseReader) compact() {
	from := s.r
	if s.inBuf {
		from = s.ds
	}
	if from == 0 {
		return
	}
	s.w = copy(s.buf, s.buf[from:s.w])
	s.r -= from
	if s.inBuf {
		s.ds, s.de = s.ds-from, s.de-from
	}
}

// indexEOL returns the index of the first CR or LF in b, or -1. Two IndexByte calls (which
// use vector instructions) beat one byte loop on long lines.
func indexEOL(b []byte) int {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		i = len(b)
	}
	if j := bytes.IndexByte(b[:i], '\r'); j >= 0 {
		return j
	}
	if i == len(b) {
		return -1
	}
	return i
}

// clear zeroes the buffers, which held model output.
func (s *sseReader) clear() {
	clear(s.buf)
	clear(s.data[:cap(s.data)])
	clear(s.event[:cap(s.event)])
	clear(s.name[:cap(s.name)])
}
