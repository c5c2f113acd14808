package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Position is an LSP position (UTF-16 code units; the benchmark's text is ASCII).
type Position struct {
	Line      int `json:"line"`
	Character int `json:"character"`
}

// Doc is a synthetic Go document whose cursor line is rewritten to make a new completion context.
type Doc struct {
	URI     string
	lines   []string
	cursor  int // index of the cursor line
	version int
	next    int // number of the next context
}

// docHead and docTail surround the cursor line: a small but realistic Go file.
var docHead = []string{
	"package bench",
	"",
	"import (",
	"\t\"fmt\"",
	"\t\"strings\"",
	")",
	"",
	"// compute mixes two numbers.",
	"func compute(a, b int) int {",
	"\treturn a*b + 1",
	"}",
	"",
	"// join names the parts.",
	"func join(parts []string) string {",
	"\treturn strings.Join(parts, \", \")",
	"}",
	"",
	"func step(total int) {",
}

var docTail = []string{
	"\tfmt.Println(total)",
	"}",
	"",
}

// NewDoc returns a document at uri with its cursor line at context 0.
func NewDoc(uri string) *Doc {
	d := &Doc{URI: uri, cursor: len(docHead), version: 1}
	d.lines = append(append(append([]string{}, docHead...), cursorLine(0)), docTail...)
	d.next = 1
	return d
}

func cursorLine(n int) string { return fmt.Sprintf("\tvalue%d := compute(", n) }

// Text returns the document's text.
func (d *Doc) Text() string { return strings.Join(d.lines, "\n") }

// Cursor returns the position at the end of the cursor line.
func (d *Doc) Cursor() Position {
	return Position{Line: d.cursor, Character: len(d.lines[d.cursor])}
}

// Open sends didOpen for the document.
func (d *Doc) Open(c *Client) error {
	return c.Notify("textDocument/didOpen", map[string]any{
		"textDocument": map[string]any{"uri": d.URI, "languageId": "go", "version": d.version, "text": d.Text()},
	})
}

// NewContext rewrites the cursor line with an incremental didChange so that the text before the
// cursor is one no request has seen, and returns the cursor position.
func (d *Doc) NewContext(c *Client) (Position, error) {
	old := d.lines[d.cursor]
	d.lines[d.cursor] = cursorLine(d.next)
	d.next++
	d.version++
	err := c.Notify("textDocument/didChange", map[string]any{
		"textDocument": map[string]any{"uri": d.URI, "version": d.version},
		"contentChanges": []map[string]any{{
			"range": map[string]any{
				"start": Position{Line: d.cursor, Character: 0},
				"end":   Position{Line: d.cursor, Character: len(old)},
			},
			"text": d.lines[d.cursor],
		}},
	})
	return d.Cursor(), err
}

// Methods measured.
const (
	MethodCompletion       = "textDocument/completion"
	MethodInlineCompletion = "textDocument/inlineCompletion"
)

// RequestParams returns the params of a completion or inline completion request at pos, as an
// editor sends them while the user types.
func RequestParams(method, uri string, pos Position) any {
	p := map[string]any{"textDocument": map[string]any{"uri": uri}, "position": pos}
	if method == MethodInlineCompletion {
		p["context"] = map[string]any{"triggerKind": 2} // Automatic
	} else {
		p["context"] = map[string]any{"triggerKind": 1} // Invoked
	}
	return p
}

// CountItems returns how many suggestions a completion or inline completion result holds (null,
// an array, or an object with "items").
func CountItems(raw json.RawMessage) (int, error) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return 0, nil
	}
	if strings.HasPrefix(s, "[") {
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return 0, fmt.Errorf("decoding the result: %w", err)
		}
		return len(items), nil
	}
	var list struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return 0, fmt.Errorf("decoding the result: %w", err)
	}
	return len(list.Items), nil
}

// Samples are the latencies a target measured.
type Samples struct {
	Miss, Hit   []time.Duration
	Empty       int // responses without a suggestion
	Errors      int // error responses and timeouts
	FirstErr    error
	RespBytes   int
	UpstreamMis int64          // upstream requests during the miss requests, where known
	UpstreamHit int64          // upstream requests during the hit requests, where known
	Iterations  int            // recorded iterations (a miss and a hit each)
	Sched       []Sched        // scheduler time of each watched process during recorded iterations
	Notes       map[string]int // notifications the server sent during recorded iterations
}

func (s *Samples) fail(err error) {
	s.Errors++
	if s.FirstErr == nil {
		s.FirstErr = err
	}
}

// Target is one measured row: a server, a document of its own and the request method.
type Target struct {
	Name     string
	Server   *Server
	Doc      *Doc
	Method   string
	Upstream func() int64 // count of upstream requests, nil if unknown
	Watch    []Watched    // processes whose CPU time the target's requests use
	Samples  Samples
}

// Watched is a process whose scheduler time a target records.
type Watched struct {
	Name string
	PID  int
}

// ours reports whether the target is a codingplan-lsp (the one measured, or one compared).
func (t *Target) ours() bool { return strings.HasPrefix(t.Name, "codingplan") }

func (t *Target) sched() []Sched {
	out := make([]Sched, len(t.Watch))
	for i, w := range t.Watch {
		out[i], _ = ReadSched(w.PID) // a process that ended counts as zero
	}
	return out
}

// Measure runs n iterations on t: each makes a new context and requests a completion there (a
// cache miss), then repeats the same request unchanged (a cache hit, if the server caches).
// With record false (warm-up) it keeps nothing.
func (t *Target) Measure(ctx context.Context, n int, timeout time.Duration, record bool) error {
	var scratch Samples
	s := &t.Samples
	if !record {
		s = &scratch
	}
	before := t.sched()
	notesBefore := t.Server.Client.Notifications()
	defer func() {
		if !record {
			return
		}
		for m, n := range t.Server.Client.Notifications() {
			if d := n - notesBefore[m]; d > 0 {
				if s.Notes == nil {
					s.Notes = map[string]int{}
				}
				s.Notes[m] += d
			}
		}
		after := t.sched()
		if s.Sched == nil {
			s.Sched = make([]Sched, len(t.Watch))
		}
		for i := range after {
			s.Sched[i] = s.Sched[i].Add(after[i].Sub(before[i]))
		}
	}()
	for range n {
		s.Iterations++
		if err := ctx.Err(); err != nil {
			return err
		}
		pos, err := t.Doc.NewContext(t.Server.Client)
		if err != nil {
			return fmt.Errorf("%s: %w", t.Name, err)
		}
		params := RequestParams(t.Method, t.Doc.URI, pos)
		for i, into := range []*[]time.Duration{&s.Miss, &s.Hit} {
			before := t.upstream()
			d, err := t.once(ctx, params, timeout, s)
			if err != nil {
				s.fail(err)
				continue
			}
			*into = append(*into, d)
			if i == 0 {
				s.UpstreamMis += t.upstream() - before
			} else {
				s.UpstreamHit += t.upstream() - before
			}
		}
	}
	return nil
}

func (t *Target) upstream() int64 {
	if t.Upstream == nil {
		return 0
	}
	return t.Upstream()
}

func (t *Target) once(ctx context.Context, params any, timeout time.Duration, s *Samples) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := t.Server.Client.Call(ctx, t.Method, params)
	if err != nil {
		return 0, err
	}
	n, err := CountItems(res.Raw)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		s.Empty++
	}
	s.RespBytes = res.Bytes
	return res.Latency, nil
}

// WaitUseful repeats fresh requests until one returns a suggestion or ctx ends: servers connect
// to their backends after initialize, and the first requests may find them not ready.
func (t *Target) WaitUseful(ctx context.Context, timeout time.Duration) error {
	var lastErr error
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: no suggestion before the deadline (last error: %v): %w", t.Name, lastErr, err)
		}
		pos, err := t.Doc.NewContext(t.Server.Client)
		if err != nil {
			return err
		}
		var s Samples
		_, err = t.once(ctx, RequestParams(t.Method, t.Doc.URI, pos), timeout, &s)
		switch {
		case err != nil:
			lastErr = err
		case s.Empty == 0:
			return nil
		default:
			lastErr = fmt.Errorf("empty result")
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond): // the server is connecting: poll gently
		}
	}
}
