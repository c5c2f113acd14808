package upstream

import (
	"bytes"

	wire "github.com/codingplan/codingplan/shared"
)

// fenceStripper removes a Markdown code fence that a chat model wraps its answer in, as the
// answer streams: "```go\ncode\n```" reaches the sink as "code". Only a fence that opens the
// answer (after blank space) is removed, with everything after its closing line. Text is held
// back only while it may still turn out to be a fence line: the opening line, and a line that
// starts with a backtick (with the newline before it).
type fenceStripper struct {
	sink   func(text []byte) error
	state  fenceState
	held   []byte
	atLine bool // fenced: held starts at the start of the answer's first line, not at a '\n'
	inLine bool // fenced: the text emitted last ended inside a line that is no fence
}

// fenceStrippers strip the fence of each suggestion of a stream.
type fenceStrippers []fenceStripper

// newFenceStrippers returns strippers for n suggestions passing text on to sink.
func newFenceStrippers(n int, sink Sink) fenceStrippers {
	fs := make(fenceStrippers, n)
	for i := range fs {
		fs[i].sink = func(text []byte) error { return sink(i, text) }
	}
	return fs
}

// write passes text of suggestion index through its stripper; a flush goes straight on.
func (fs fenceStrippers) write(index int, text []byte) error {
	if len(text) == 0 {
		return fs[0].sink(nil)
	}
	return fs[index].write(text)
}

// finish ends every suggestion's text (see fenceStripper.finish).
func (fs fenceStrippers) finish() error {
	for i := range fs {
		if err := fs[i].finish(); err != nil {
			return err
		}
	}
	return nil
}

// clear zeroes the strippers' buffers.
func (fs fenceStrippers) clear() {
	for i := range fs {
		fs[i].clear()
	}
}

type fenceState uint8

const (
	fenceStart  fenceState = iota // deciding whether the answer opens with a fence
	fencePass                     // no fence: everything passes
	fenceInside                   // inside the fence
	fenceClosed                   // after the closing fence: everything is dropped
)

// maxFenceLine bounds the opening line ("```" and an info string) held while deciding.
const maxFenceLine = 128

func (f *fenceStripper) write(p []byte) error {
	if len(p) == 0 {
		return f.sink(nil) // a flush (see Sink): what is held waits for its line's end
	}
	switch f.state {
	case fencePass:
		return f.sink(p)
	case fenceClosed:
		return nil
	case fenceInside:
		return f.inside(p)
	}
	f.held = wire.AppendClear(f.held, p)
	t := bytes.TrimLeft(f.held, " \t\r\n")
	switch {
	case len(t) == 0:
		return nil
	case !bytes.HasPrefix(t, []byte("```")[:min(3, len(t))]):
		return f.pass()
	case len(t) < 3:
		return nil
	}
	nl := bytes.IndexByte(t, '\n')
	switch {
	case nl > maxFenceLine || (nl < 0 && len(t) > maxFenceLine):
		return f.pass()
	case nl < 0:
		return nil
	}
	rest := t[nl+1:]
	f.state, f.atLine = fenceInside, true
	// rest aliases held: move it to the front before appending to held again.
	n := copy(f.held, rest)
	clear(f.held[n:])
	f.held = f.held[:0]
	return f.inside(f.held[:n])
}

// pass gives up on finding a fence and lets everything through.
func (f *fenceStripper) pass() error {
	f.state = fencePass
	err := f.sink(f.held)
	clear(f.held)
	f.held = f.held[:0]
	return err
}

// inside handles text within the fence. Invariant between calls: held is empty, or starts at
// the answer's first line (atLine), or starts with the '\n' that ends the last emitted line.
func (f *fenceStripper) inside(p []byte) error {
	if f.inLine {
		// p continues a line that is no fence: emit it up to its end.
		nl := bytes.IndexByte(p, '\n')
		if nl < 0 {
			return f.sink(p)
		}
		if err := f.sink(p[:nl]); err != nil {
			return err
		}
		f.inLine, p = false, p[nl:]
	}
	f.held = wire.AppendClear(f.held, p)
	for len(f.held) > 0 {
		start := 1
		if f.atLine {
			start = 0
		}
		line := f.held[start:]
		nl := bytes.IndexByte(line, '\n')
		if nl < 0 {
			if mayBeFence(line) {
				return nil
			}
			// This line is no fence: emit all, the rest of it will pass straight on.
			err := f.sink(f.held)
			f.drop(len(f.held))
			f.atLine, f.inLine = false, true
			return err
		}
		if isFence(line[:nl]) {
			f.close()
			return nil
		}
		if err := f.sink(f.held[:start+nl]); err != nil {
			return err
		}
		f.drop(start + nl)
		f.atLine = false
	}
	return nil
}

// finish emits what is held at the end of the answer, dropping a closing fence without a
// newline after it.
func (f *fenceStripper) finish() error {
	if len(f.held) == 0 {
		return nil
	}
	if f.state == fenceInside {
		start := 1
		if f.atLine {
			start = 0
		}
		if isFence(f.held[start:]) {
			f.close()
			return nil
		}
	}
	err := f.sink(f.held)
	f.drop(len(f.held))
	return err
}

func (f *fenceStripper) close() {
	f.state = fenceClosed
	f.drop(len(f.held))
}

// drop removes the first n held bytes, zeroing what it frees.
func (f *fenceStripper) drop(n int) {
	m := copy(f.held, f.held[n:])
	clear(f.held[m:])
	f.held = f.held[:m]
}

// clear zeroes the buffer, which held model output.
func (f *fenceStripper) clear() { clear(f.held[:cap(f.held)]) }

// isFence reports whether line closes a fence: up to three spaces, three or more backticks,
// then only blank space.
func isFence(line []byte) bool {
	line = bytes.TrimRight(line, " \t\r")
	t := bytes.TrimLeft(line, " ")
	if len(line)-len(t) > 3 || len(t) < 3 {
		return false
	}
	return len(bytes.Trim(t, "`")) == 0
}

// mayBeFence reports whether an incomplete line may still become a closing fence.
func mayBeFence(line []byte) bool {
	t := bytes.TrimLeft(line, " ")
	if len(line)-len(t) > 3 {
		return false
	}
	if len(t) == 0 {
		return true
	}
	t = bytes.TrimRight(t, " \t\r")
	return len(bytes.Trim(t, "`")) == 0 && len(t) > 0
}
