package wire

import "strconv"

// AppendRequest appends the JSON of a completion request frame (Type request, Completion set,
// no Edit and no Token) to dst, byte for byte what Marshal writes, without reflection and
// without the copies a growing buffer leaves behind: room for the whole frame is made first
// (see Grow). ok is false, and dst unchanged, for any other frame: Marshal encodes those.
func AppendRequest(dst []byte, f ClientFrame) (out []byte, ok bool) {
	c := f.Completion
	if f.Type != TypeRequest || c == nil || f.Edit != nil || f.Token != "" {
		return dst, false
	}
	size := 160 + len(f.ID) + len(f.Op) + len(f.Model) + len(c.Prefix) + len(c.Suffix) + len(c.Language) + len(c.Path)
	for _, s := range f.Stop {
		size += len(s) + 3
	}
	for _, s := range c.Snippets {
		size += len(s.Path) + len(s.Text) + 24
	}
	dst = Grow(dst, size+size/8) // escapes make some room necessary; more is found by append
	dst = append(dst, `{"type":`...)
	dst = appendString(dst, f.Type)
	dst = appendField(dst, "id", f.ID)
	dst = appendField(dst, "op", f.Op)
	dst = appendField(dst, "model", f.Model)
	if f.MaxTokens != 0 {
		dst = append(dst, `,"max_tokens":`...)
		dst = strconv.AppendInt(dst, int64(f.MaxTokens), 10)
	}
	if len(f.Stop) > 0 {
		dst = append(dst, `,"stop":[`...)
		for i, s := range f.Stop {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, string(s))
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"completion":{"prefix":`...)
	dst = appendString(dst, string(c.Prefix))
	dst = appendField(dst, "suffix", c.Suffix)
	dst = appendField(dst, "language", c.Language)
	dst = appendField(dst, "path", c.Path)
	if len(c.Snippets) > 0 {
		dst = append(dst, `,"snippets":[`...)
		for i, s := range c.Snippets {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"path":`...)
			dst = appendString(dst, s.Path)
			dst = append(dst, `,"text":`...)
			dst = appendString(dst, string(s.Text))
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	if c.Multiline {
		dst = append(dst, `,"multiline":true`...)
	}
	if c.N != 0 {
		dst = append(dst, `,"n":`...)
		dst = strconv.AppendInt(dst, int64(c.N), 10)
	}
	return append(dst, "}}"...), true
}

// appendField appends ,"name":value for a string field that is omitted when empty.
func appendField[S ~string](dst []byte, name string, value S) []byte {
	if value == "" {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	return appendString(dst, string(value))
}
