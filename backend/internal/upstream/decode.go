package upstream

import (
	"bytes"
	"errors"
	"io"
	"math"
	"strconv"

	"github.com/go-json-experiment/json/jsontext"

	wire "github.com/codingplan/codingplan/shared"
)

// eventDecoder reads the few fields the relay needs from one event's JSON with the standard
// library's tokenizer (encoding/json/jsontext, through github.com/go-json-experiment/json,
// which is an alias of it on Go 1.27 and its own copy on Go 1.26), without reflection: a codec walks the objects
// it reads and skips every other value, which jsontext still checks to be valid JSON. Strings
// are unescaped into the codec's own buffers, kept from one event to the next, so that
// decoding an event allocates nothing once warm.
//
// The semantics are encoding/json's for the struct the codec would otherwise unmarshal, with
// member names matched exactly (not case-insensitively): null where an object, a string or a
// number is read is the same as an absent member; any other type mismatch is an error; with
// duplicate names the last one wins. Invalid UTF-8 inside strings passes through unchanged.
type eventDecoder struct {
	src  bytes.Buffer // aliases the event's data: jsontext reads a bytes.Buffer without copying
	dec  jsontext.Decoder
	name []byte // a member name that had escapes, unescaped
	// str is where the value text read last stands in the data when it was a string:
	// data[str[0]:str[1]] is the literal, quotes included; {-1, -1} when it was null.
	str [2]int
}

var decodeOptions = []jsontext.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)}

// reset starts decoding data, which must not change until the decoding ends.
func (d *eventDecoder) reset(data []byte) {
	d.src = *bytes.NewBuffer(data)
	d.dec.Reset(&d.src, decodeOptions...)
}

// object reads the start of an object, or null, as the value of field. It reports whether an
// object started; its members are then read with member until that returns false.
func (d *eventDecoder) object(field string) (bool, error) {
	switch d.dec.PeekKind() {
	case '{':
		_, err := d.dec.ReadToken()
		return err == nil, err
	case 'n':
		_, err := d.dec.ReadToken()
		return false, err
	case 0: // invalid or missing: ReadToken returns why
		_, err := d.dec.ReadToken()
		return false, orUnexpected(err)
	}
	return false, &typeError{field}
}

// array reads the start of an array, or null, as object does; its elements are read after
// each call of element that returns true.
func (d *eventDecoder) array(field string) (bool, error) {
	switch d.dec.PeekKind() {
	case '[':
		_, err := d.dec.ReadToken()
		return err == nil, err
	case 'n':
		_, err := d.dec.ReadToken()
		return false, err
	case 0:
		_, err := d.dec.ReadToken()
		return false, orUnexpected(err)
	}
	return false, &typeError{field}
}

// member returns the next member's name, unescaped and valid until the next read, or false
// at the end of the object.
func (d *eventDecoder) member() ([]byte, bool, error) {
	if d.dec.PeekKind() == '}' {
		_, err := d.dec.ReadToken()
		return nil, false, err
	}
	v, err := d.dec.ReadValue() // jsontext accepts only a string here
	if err != nil {
		return nil, false, orUnexpected(err)
	}
	if bytes.IndexByte(v, '\\') < 0 {
		return v[1 : len(v)-1], true, nil
	}
	d.name, err = appendUnquote(d.name[:0], v)
	return d.name, err == nil, err
}

// members reads an object, or null, as the value of field, calling read with each member's
// name (unescaped, valid until the next read); read must read the member's value. It reports
// whether an object started, and stops at the first error.
func (d *eventDecoder) members(field string, read func(name []byte) error) (bool, error) {
	started, err := d.object(field)
	for ok := started; ok && err == nil; {
		var name []byte
		if name, ok, err = d.member(); ok && err == nil {
			err = read(name)
		}
	}
	return started, err
}

// element reports whether the array has another element, reading its end when not.
func (d *eventDecoder) element() (bool, error) {
	if d.dec.PeekKind() == ']' {
		_, err := d.dec.ReadToken()
		return false, err
	}
	return true, nil
}

// text reads a string, or null as empty, into dst[:0].
func (d *eventDecoder) text(dst []byte, field string) ([]byte, error) {
	d.str = [2]int{-1, -1}
	v, err := d.dec.ReadValue()
	switch {
	case err != nil:
		return dst[:0], orUnexpected(err)
	case v[0] == '"':
		end := int(d.dec.InputOffset())
		d.str = [2]int{end - len(v), end}
		return appendUnquote(dst[:0], v)
	case v[0] == 'n':
		return dst[:0], nil
	}
	return dst[:0], &typeError{field}
}

// raw reads any value into dst[:0], as it is.
func (d *eventDecoder) raw(dst []byte) ([]byte, error) {
	v, err := d.dec.ReadValue()
	if err != nil {
		return dst[:0], orUnexpected(err)
	}
	return append(dst[:0], v...), nil
}

// int reads an integer that fits an int, or null as 0. Like encoding/json, it refuses a
// number with a fraction or an exponent.
func (d *eventDecoder) int(field string) (int, error) {
	v, err := d.dec.ReadValue()
	switch {
	case err != nil:
		return 0, orUnexpected(err)
	case v[0] == 'n':
		return 0, nil
	}
	if n, ok := parseInt(v); ok {
		return n, nil
	}
	return 0, &typeError{field}
}

// skip reads a value of any type.
func (d *eventDecoder) skip() error { return orUnexpected(d.dec.SkipValue()) }

// end checks that nothing but blank space follows the top-level value.
func (d *eventDecoder) end() error {
	switch _, err := d.dec.ReadToken(); err {
	case io.EOF:
		return nil
	case nil:
		return errTrailing
	default:
		return err
	}
}

// parseInt parses a JSON number (valid JSON, as jsontext checked) made of digits only.
func parseInt(b []byte) (int, bool) {
	neg := b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 19 { // 19 digits hold any int64, and do not overflow a uint64
		return 0, false
	}
	var u uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
	}
	if neg {
		if u > -math.MinInt {
			return 0, false
		}
		return int(-u), true
	}
	if u > math.MaxInt {
		return 0, false
	}
	return int(u), true
}

// typeError says that a field held a value of the wrong type.
type typeError struct{ field string }

func (e *typeError) Error() string { return "field " + e.field + " has the wrong type" }

var errTrailing = errors.New("data after the JSON value")

// orUnexpected turns the end of the input inside a value into io.ErrUnexpectedEOF: io.EOF
// means a clean end to this package's callers.
func orUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// decodeProblem describes an error of eventDecoder by kind and offset only: jsontext's
// messages can quote the input.
func decodeProblem(err error) string {
	var se *jsontext.SyntacticError
	var te *typeError
	switch {
	case errors.As(err, &te):
		return te.Error()
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of the JSON value"
	case errors.As(err, &se):
		return "syntax error at byte " + strconv.FormatInt(se.ByteOffset, 10)
	case errors.Is(err, errTrailing):
		return errTrailing.Error()
	case errors.Is(err, errBadString):
		return "bad string"
	}
	return "not JSON"
}

// apiError reads an error object, or null, into e. It reports whether there was an object.
func (d *eventDecoder) apiError(e *apiError) (bool, error) {
	e.Type, e.Code = e.Type[:0], e.Code[:0]
	return d.members("error", func(name []byte) (err error) {
		switch string(name) {
		case "type":
			e.Type, err = d.text(e.Type, "error.type")
		case "code":
			e.Code, err = d.raw(e.Code)
		default:
			err = d.skip()
		}
		return err
	})
}

// textSpot counts the text strings an event carried and notes where the last one stands, for
// textTemplate.learn.
type textSpot struct {
	n  int
	at [2]int
}

// note counts the value d.text read last when it was a string.
func (t *textSpot) note(d *eventDecoder) {
	if d.str[0] >= 0 {
		t.n++
		t.at = d.str
	}
}

// textTemplate decodes the text events of a stream from their text alone. The events of one
// stream differ only in their text: the bytes before and after it (an id, a model name, an
// index, a null finish reason...) repeat byte for byte. After a codec decoded an event with the
// tokenizer and found it carried only text, in one string, learn keeps the bytes around that
// string; match then takes an event that is those bytes around exactly one valid JSON string
// (jsontext.Value.IsValid) and returns the string's text. Such an event is valid JSON with the
// same members and values as the learned one but for the string, so it decodes the same way:
// no JSON is parsed by hand, and anything else takes the tokenizer's path.
type textTemplate struct {
	prefix, suffix []byte // may hold text the provider sent around the text (cleared with it)
	ok             bool
	hits           int // events matched (for tests)
}

// match appends the text of data to dst when data fits the template.
func (t *textTemplate) match(dst, data []byte) ([]byte, bool) {
	p, s := t.prefix, t.suffix
	if !t.ok || len(data) < len(p)+len(s)+2 || !bytes.HasPrefix(data, p) || !bytes.HasSuffix(data, s) {
		return dst, false
	}
	q := data[len(p) : len(data)-len(s)]
	if q[0] != '"' || q[len(q)-1] != '"' || !jsontext.Value(q).IsValid(decodeOptions...) {
		return dst, false
	}
	out, err := appendUnquote(dst, q)
	if err != nil {
		return dst, false
	}
	t.hits++
	return out, true
}

// learn makes the template the bytes of data around data[at[0]:at[1]], its one text string.
func (t *textTemplate) learn(data []byte, at [2]int) {
	t.prefix = wire.AppendClear(t.prefix[:0], data[:at[0]])
	t.suffix = wire.AppendClear(t.suffix[:0], data[at[1]:])
	t.ok = true
}

// clear forgets the template and zeroes its bytes.
func (t *textTemplate) clear() {
	t.ok = false
	clear(t.prefix[:cap(t.prefix)])
	clear(t.suffix[:cap(t.suffix)])
}
