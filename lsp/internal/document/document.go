// Package document keeps the text of the documents an editor has open, versioned, and converts
// between LSP positions (in the negotiated encoding: UTF-16, UTF-8 or UTF-32 units) and byte
// offsets.
//
// A *Doc never changes once made: an edit makes a new one. A request can therefore hold the
// snapshot it started with while later edits arrive. Its line index is built on the first
// position conversion (most open documents are never asked about) and takes 4 bytes a line.
package document

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"go.lsp.dev/protocol"
)

// Doc is one version of an open document. Its fields must not be changed.
type Doc struct {
	URI        string
	LanguageID string
	Version    int32
	// Text is the whole document. It is user content: never log it.
	Text string
	// Seq orders documents by their last change across the store: higher is more recent.
	Seq uint64

	// index holds the byte offset where each line starts (index[0] == 0), once built.
	index atomic.Pointer[[]uint32]
}

// MaxBytes is the largest document a Doc holds: its line index counts bytes in 32 bits.
const MaxBytes int64 = math.MaxUint32

// New returns a document holding text, which must not be longer than MaxBytes.
func New(uri, languageID string, version int32, text string) *Doc {
	return &Doc{URI: uri, LanguageID: languageID, Version: version, Text: text}
}

// lines returns the line index, building it on first use. Two goroutines may both build it;
// they build the same.
func (d *Doc) lines() []uint32 {
	if p := d.index.Load(); p != nil {
		return *p
	}
	lines := indexLines(d.Text)
	d.index.Store(&lines)
	return lines
}

// indexLines finds the start of every line. Lines end at "\n", "\r\n" or "\r", as in LSP.
func indexLines(s string) []uint32 {
	n := 1 + strings.Count(s, "\n")
	if strings.IndexByte(s, '\r') >= 0 {
		n += strings.Count(s, "\r") // an upper bound: CRLF counts twice
	}
	lines := make([]uint32, 1, n)
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\n':
			lines = append(lines, uint32(i+1))
		case '\r':
			if i+1 < len(s) && s[i+1] == '\n' {
				i++
			}
			lines = append(lines, uint32(i+1))
		}
	}
	return lines[:len(lines):len(lines)]
}

// Lines returns how many lines d has. A document ending in a line terminator has an empty last
// line.
func (d *Doc) Lines() int { return len(d.lines()) }

// lineBounds returns the byte offsets of the start of line and of its end before the terminator.
func (d *Doc) lineBounds(line int) (start, end int) {
	lines := d.lines()
	start = int(lines[line])
	if line+1 >= len(lines) {
		return start, len(d.Text)
	}
	end = int(lines[line+1]) - 1 // the '\n' or lone '\r'
	if d.Text[end] == '\n' && end > start && d.Text[end-1] == '\r' {
		end--
	}
	return start, end
}

// lineOf returns the line that contains byte offset off.
func (d *Doc) lineOf(off int) int {
	lines := d.lines()
	return sort.Search(len(lines), func(i int) bool { return int(lines[i]) > off }) - 1
}

// LineStart returns the byte offset of the start of the line that contains off.
func (d *Doc) LineStart(off int) int {
	return int(d.lines()[d.lineOf(max(0, min(off, len(d.Text))))])
}

// LineEnd returns the byte offset of the end (before the terminator) of the line that holds off.
func (d *Doc) LineEnd(off int) int {
	_, end := d.lineBounds(d.lineOf(max(0, min(off, len(d.Text)))))
	return end
}

// Change is one content change of a textDocument/didChange notification. A nil Range replaces
// the whole text.
type Change struct {
	Range *protocol.Range
	Text  string
}

// Apply returns the document after changes, applied in order as LSP says, with positions in
// units of e. It fails, changing nothing, when a range lies outside the document as it is when
// that change applies.
func (d *Doc) Apply(e Encoding, version int32, changes []Change) (*Doc, error) {
	cur := d
	for i, c := range changes {
		if c.Range == nil {
			cur = New(d.URI, d.LanguageID, version, c.Text)
			continue
		}
		start, end, err := cur.Range(e, *c.Range)
		if err != nil {
			return nil, fmt.Errorf("content change %d: %w", i, err)
		}
		size := len(cur.Text) - (end - start) + len(c.Text)
		if int64(size) > MaxBytes {
			return nil, fmt.Errorf("content change %d: the document would be %d bytes, over the limit of %d", i, size, MaxBytes)
		}
		var b strings.Builder
		b.Grow(size)
		b.WriteString(cur.Text[:start])
		b.WriteString(c.Text)
		b.WriteString(cur.Text[end:])
		cur = New(d.URI, d.LanguageID, version, b.String())
	}
	if cur == d {
		cur = New(d.URI, d.LanguageID, version, d.Text)
	}
	return cur, nil
}

// Store holds the open documents by URI. It is safe for concurrent use.
type Store struct {
	mu   sync.Mutex
	docs map[string]*Doc
	seq  uint64
}

// NewStore returns an empty store.
func NewStore() *Store { return &Store{docs: map[string]*Doc{}} }

// Open adds d, replacing any document with the same URI.
func (s *Store) Open(d *Doc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	d.Seq = s.seq
	s.docs[d.URI] = d
}

// ErrNotOpen is wrapped by errors about a document the editor has not opened.
var ErrNotOpen = fmt.Errorf("document is not open")

// Change applies changes to the document uri and returns the new version.
func (s *Store) Change(uri string, e Encoding, version int32, changes []Change) (*Doc, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.docs[uri]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotOpen, uri)
	}
	nd, err := d.Apply(e, version, changes)
	if err != nil {
		return nil, err
	}
	s.seq++
	nd.Seq = s.seq
	s.docs[uri] = nd
	return nd, nil
}

// Close forgets the document uri.
func (s *Store) Close(uri string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.docs, uri)
}

// Get returns the current version of the document uri, or nil.
func (s *Store) Get(uri string) *Doc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.docs[uri]
}

// Recent returns up to n open documents other than except, most recently changed first.
func (s *Store) Recent(except string, n int) []*Doc {
	s.mu.Lock()
	var all []*Doc
	if len(s.docs) > 1 {
		all = make([]*Doc, 0, len(s.docs))
	}
	for uri, d := range s.docs {
		if uri != except {
			all = append(all, d)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(all, func(a, b *Doc) int { return cmp.Compare(b.Seq, a.Seq) })
	if len(all) > n {
		all = all[:n]
	}
	return all
}

// Len returns how many documents are open.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.docs)
}
