package ngram

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"unsafe"
)

// The model file, all little-endian: a header (magic, format version,
// order, corpus fingerprint), the vocabulary (key offsets and the keys,
// then ids sorted by key, by text, and the top unigrams per family), the
// root weight, each level's arrays, the baseline table, and a CRC-32C of
// everything before it. Since format 2 the argument counts of calls
// (arities) follow the baseline table. Arrays are stored as they sit in memory, so
// loading reads them in place.
const (
	fileName = "ngram.model"
	magic    = "CPNGRAM\x00"
)

// errStale means the model file exists but was built from another corpus,
// by other settings or in another format.
var errStale = errors.New("model file is stale")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// littleEndian reports whether this machine stores numbers as the file
// does; other machines convert.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// words returns the memory of a slice of 4-byte numbers as bytes.
func words[T uint32 | float32](s []T) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), 4*len(s))
}

// swapWords converts 4-byte numbers between big- and little-endian.
func swapWords(b []byte) {
	for i := 0; i+3 < len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
}

// save writes m to path atomically: a temporary file renamed over it.
func (m *Model) save(path string) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".ngram-*.tmp")
	if err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	crc := crc32.New(castagnoli)
	w := bufio.NewWriterSize(io.MultiWriter(f, crc), 1<<20)
	var b []byte
	u32 := func(v uint32) { b = binary.LittleEndian.AppendUint32(b[:0], v); w.Write(b) }
	array := func(p []byte) {
		if littleEndian {
			w.Write(p)
			return
		}
		for i := 0; i+3 < len(p); i += 4 {
			w.Write([]byte{p[i+3], p[i+2], p[i+1], p[i]})
		}
	}
	w.WriteString(magic)
	u32(formatVersion)
	u32(uint32(m.order))
	w.Write(m.info.Fingerprint[:])
	u32(uint32(m.vocabSize()))
	array(words(m.keyOff))
	w.WriteString(m.keys)
	array(words(m.byKey))
	u32(uint32(len(m.byText)))
	array(words(m.byText))
	u32(uint32(len(m.topUni)))
	array(words(m.topUni))
	array(words([]float32{m.rootGamma}))
	for d := range m.levels {
		lv := &m.levels[d]
		u32(uint32(len(lv.alpha)))
		if d > 0 {
			array(words(lv.tok))
		}
		array(words(lv.alpha))
		if d+1 < m.order {
			array(words(lv.child))
			array(words(lv.gamma))
		}
	}
	array(words(m.baseline))
	u32(uint32(len(m.arity.masks)))
	array(words(m.arity.off))
	w.WriteString(m.arity.keys)
	array(words(m.arity.masks))
	if err := w.Flush(); err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	if err := binary.Write(f, binary.LittleEndian, crc.Sum32()); err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	if st, err := os.Stat(path); err == nil {
		m.info.FileBytes = st.Size()
	}
	return nil
}

// load reads the model file at path. It returns errStale when the file was
// built from another fingerprint or format, and another error when it is
// unreadable or corrupt. It reads each array straight into its final
// memory.
func load(path string, want [32]byte) (*Model, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	r := &fileReader{r: bufio.NewReaderSize(f, 64<<10), left: st.Size() - 4}
	var head [len(magic)]byte
	r.read(head[:])
	if r.err != nil || string(head[:]) != magic {
		return nil, fmt.Errorf("%w: not a model file", errStale)
	}
	if v := r.u32(); v != formatVersion {
		return nil, fmt.Errorf("%w: format version %d, want %d", errStale, v, formatVersion)
	}
	m := &Model{order: int(r.u32())}
	r.read(m.info.Fingerprint[:])
	if r.err == nil && m.info.Fingerprint != want {
		return nil, fmt.Errorf("%w: corpus or settings changed", errStale)
	}
	if m.order < 2 || m.order > maxOrder {
		return nil, fmt.Errorf("model file is corrupt: order %d", m.order)
	}
	v := int(r.u32())
	m.keyOff = r.u32s(v + 1)
	if r.err == nil {
		keys := make([]byte, m.keyOff[v])
		if int64(len(keys)) > r.left {
			return nil, errors.New("model file is corrupt: vocabulary")
		}
		r.read(keys)
		m.keys = string(keys)
	}
	m.byKey = r.u32s(v)
	m.byText = r.u32s(int(r.u32()))
	m.topUni = r.u32s(int(r.u32()))
	m.rootGamma = r.f32s(1)[0]
	m.levels = make([]level, m.order)
	for d := range m.levels {
		lv := &m.levels[d]
		n := int(r.u32())
		if d > 0 {
			lv.tok = r.u32s(n)
		}
		lv.alpha = r.f32s(n)
		if d+1 < m.order {
			lv.child = r.u32s(n + 1)
			lv.gamma = r.f32s(n)
		}
	}
	m.baseline = r.u32s(v)
	n := int(r.u32())
	m.arity.off = r.u32s(n + 1)
	if r.err == nil {
		keys := make([]byte, m.arity.off[n])
		if int64(len(keys)) > r.left {
			return nil, errors.New("model file is corrupt: call table")
		}
		r.read(keys)
		m.arity.keys = string(keys)
	}
	m.arity.masks = r.u32s(n)
	sum := r.crc
	var tail [4]byte
	r.left += 4
	r.read(tail[:])
	if r.err == nil && r.left != 0 {
		r.err = errors.New("trailing bytes")
	}
	if r.err != nil {
		return nil, fmt.Errorf("model file is corrupt: %w", r.err)
	}
	if binary.LittleEndian.Uint32(tail[:]) != sum {
		return nil, errors.New("model file is corrupt: checksum mismatch")
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("model file is corrupt: %w", err)
	}
	m.info.FileBytes = st.Size()
	m.derive()
	return m, nil
}

// fileReader reads a model file, summing what it reads and remembering the
// first error. left is how many bytes may still be read, so a damaged
// length cannot make it allocate more than the file holds.
type fileReader struct {
	r    *bufio.Reader
	crc  uint32
	left int64
	err  error
}

var errShort = errors.New("unexpected end of file")

func (r *fileReader) read(p []byte) {
	if r.err != nil {
		return
	}
	if int64(len(p)) > r.left {
		r.err = errShort
		return
	}
	if _, err := io.ReadFull(r.r, p); err != nil {
		r.err = err
		return
	}
	r.left -= int64(len(p))
	r.crc = crc32.Update(r.crc, castagnoli, p)
}

func (r *fileReader) u32() uint32 {
	var b [4]byte
	r.read(b[:])
	return binary.LittleEndian.Uint32(b[:])
}

// fits reports whether n 4-byte numbers can still be read.
func (r *fileReader) fits(n int) bool {
	if r.err == nil && (n < 0 || int64(n) > r.left/4) {
		r.err = errShort
	}
	return r.err == nil
}

func (r *fileReader) u32s(n int) []uint32 {
	if !r.fits(n) {
		return make([]uint32, max(n, 0)%1024) // never used: the load fails
	}
	out := make([]uint32, n)
	r.readWords(words(out))
	return out
}

func (r *fileReader) f32s(n int) []float32 {
	if !r.fits(n) {
		return make([]float32, max(n, 1)%1024+1)
	}
	out := make([]float32, n)
	r.readWords(words(out))
	return out
}

func (r *fileReader) readWords(b []byte) {
	r.read(b)
	if !littleEndian {
		swapWords(b)
	}
}

// validate checks that every index in m is in range, so a damaged file
// cannot make lookups panic.
func (m *Model) validate() error {
	v := uint32(m.vocabSize())
	if v == 0 || m.keyOff[0] != 0 || m.keyOff[1] != 0 || len(m.levels[0].alpha) != int(v) {
		return errors.New("vocabulary and unigrams disagree")
	}
	for i := 1; i < int(v); i++ {
		if m.keyOff[i+1] < m.keyOff[i]+2 {
			return fmt.Errorf("short key %d", i)
		}
	}
	if int(m.keyOff[v]) != len(m.keys) {
		return errors.New("key offsets do not cover the keys")
	}
	if !m.arity.valid() {
		return errors.New("call table offsets out of order")
	}
	for _, ids := range [][]uint32{m.byKey, m.byText, m.topUni, m.baseline} {
		for _, id := range ids {
			if id >= v {
				return errors.New("token id out of range")
			}
		}
	}
	for _, id := range m.byText {
		if !isWord(m.key(id)) {
			return errors.New("text index holds a non-word")
		}
	}
	for _, id := range m.topUni {
		if id == boundary {
			return errors.New("unigram index holds the boundary")
		}
	}
	for d := range m.levels {
		lv := &m.levels[d]
		for _, t := range lv.tok {
			if t >= v {
				return fmt.Errorf("level %d: token out of range", d)
			}
		}
		if d+1 < m.order {
			next := uint32(len(m.levels[d+1].alpha))
			prev := uint32(0)
			for _, c := range lv.child {
				if c < prev || c > next {
					return fmt.Errorf("level %d: child offsets out of order", d)
				}
				prev = c
			}
			if len(lv.child) == 0 || lv.child[len(lv.child)-1] != next {
				return fmt.Errorf("level %d: child offsets do not cover the next level", d)
			}
		}
	}
	return nil
}
