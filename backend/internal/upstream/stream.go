package upstream

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	wire "github.com/codingplan/codingplan/shared"
)

// codec is what differs between the HTTP provider kinds. A codec serves one stream.
type codec interface {
	// encode returns the request body for req and the size of the prompt text in it, for the
	// usage estimate when the provider reports none.
	encode(req *Request, m *ModelConfig) (body []byte, promptBytes int, err error)
	// event handles one SSE event, passing output text to st.emit. It returns true at the
	// stream's end marker ([DONE], message_stop).
	event(name, data []byte, st *streamState) (end bool, err error)
	// clear zeroes the codec's buffers, which held model output.
	clear()
}

// httpProvider streams from an HTTP API through its codec. It implements Provider.
type httpProvider struct {
	kind string
	// several: the API makes several suggestions in one call (OpenAI's n); otherwise each
	// suggestion is one call (see fanOut).
	several  bool
	model    ModelConfig
	url      string
	client   *http.Client
	key      wire.Secret
	header   func(h http.Header, key wire.Secret)
	newCodec func() codec
}

// Causes of an attempt's context ending, told apart to pick the error class.
var (
	errFirstToken = errors.New("no output before the first-token timeout")
	errIdle       = errors.New("no event within the idle timeout")
	errTotal      = errors.New("the total timeout passed")
)

// streamState is what a codec sees of the stream it decodes.
type streamState struct {
	res        Result
	usageSeen  bool // the provider reported usage
	outBytes   int
	out        Sink // the output filter chain, ending at the caller's sink
	dog        *watchdog
	sinkFailed error
}

// flush tells the sink that all output received so far was passed on (see Sink).
func (st *streamState) flush() {
	if st.sinkFailed == nil {
		if err := st.out(0, nil); err != nil {
			st.sinkFailed = err
		}
	}
}

// emit passes output text of suggestion index on. A sink error is kept so Stream can return
// it unwrapped by the provider's error classes.
func (st *streamState) emit(index int, p []byte) error {
	if len(p) == 0 {
		return nil
	}
	st.dog.token()
	st.outBytes += len(p)
	if err := st.out(index, p); err != nil {
		st.sinkFailed = err
		return err
	}
	return nil
}

// finish notes how suggestion index ended.
func (st *streamState) finish(index int, reason string) {
	if index == 0 {
		st.res.FinishReason = reason
	} else {
		st.res.Later[index-1] = reason
	}
}

// result is how the stream ended, for n suggestions: stop where the provider said nothing.
func (st *streamState) result(n int) Result {
	res := st.res
	if res.FinishReason == "" {
		res.FinishReason = wire.FinishStop
	}
	for i := range n - 1 {
		res.Later[i] = cmp.Or(res.Later[i], wire.FinishStop)
	}
	return res
}

// Stream implements Provider. A request for several suggestions is one call when the API
// makes several, else one call per suggestion, run at once.
func (p *httpProvider) Stream(ctx context.Context, req *Request, sink Sink) (Result, error) {
	if n := req.suggestions(); n > 1 && !p.several {
		return fanOut(ctx, req, n, true, sink, p.stream)
	}
	return p.stream(ctx, req, sink)
}

// stream makes one call.
func (p *httpProvider) stream(ctx context.Context, req *Request, sink Sink) (Result, error) {
	n := req.suggestions()
	m := &p.model
	t := m.Timeouts
	// The watchdog's one timer also ends the call at the total timeout: no timer and context
	// of their own for it on every call.
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	dog := startWatchdog(t, cancel)
	defer dog.stop()

	c := p.newCodec()
	defer c.clear()
	body, promptBytes, err := c.encode(req, m)
	defer clear(body)
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w: %w", p.kind, ErrFailed, err)
	}
	hreq, err := http.NewRequestWithContext(actx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w: %w", p.kind, ErrFailed, err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "text/event-stream")
	p.header(hreq.Header, p.key)

	resp, err := p.client.Do(hreq)
	if err != nil {
		return Result{}, p.fail(ctx, actx, dog, false, fmt.Errorf("request: %w", netDetail(err)))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Result{}, fmt.Errorf("%s: %w", p.kind, statusError(resp))
	}
	if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/json") {
		b := readSome(resp.Body)
		defer clear(b)
		return Result{}, fmt.Errorf("%s: %w: a JSON reply instead of an event stream%s", p.kind, ErrFailed, errorDetail(b))
	}

	st := &streamState{out: sink, dog: dog}
	var fences fenceStrippers
	if p.kind == KindOpenAIChat {
		fences = newFenceStrippers(n, sink)
		st.out = fences.write
		defer fences.clear()
	}
	sse := newSSEReaderSize(resp.Body, MaxLineBytes, sseBufferBytes)
	sse.beforeRead = st.flush
	defer sse.clear()
	if err := st.relay(sse, c); err != nil {
		switch {
		case st.sinkFailed != nil:
			return Result{}, st.sinkFailed
		case errors.Is(err, ErrFailed):
			return Result{}, fmt.Errorf("%s: %w", p.kind, err)
		case err == io.EOF && actx.Err() == nil:
			return Result{}, fmt.Errorf("%s: %w: the stream ended before its end marker", p.kind, ErrFailed)
		}
		return Result{}, p.fail(ctx, actx, dog, true, fmt.Errorf("reading the stream: %w", netDetail(err)))
	}
	// Read the little that follows the end marker, so the connection goes back to the pool.
	_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
	if err := fences.finish(); err != nil {
		return Result{}, err
	}
	res := st.result(n)
	if !st.usageSeen {
		// The provider sent no usage: estimate about four bytes per token.
		res.Usage = wire.Usage{PromptTokens: (promptBytes + 3) / 4, CompletionTokens: (st.outBytes + 3) / 4}
	}
	return res, nil
}

// relay passes the events of sse through c until the end marker. It returns io.EOF when
// the stream ends before the marker, the sink's error (also in st.sinkFailed), an error
// wrapping ErrFailed for what cannot be parsed, or the reader's error.
func (st *streamState) relay(sse *sseReader, c codec) error {
	for {
		name, data, err := sse.next()
		if err != nil {
			return err
		}
		st.dog.event()
		end, err := c.event(name, data, st)
		if st.sinkFailed != nil {
			return st.sinkFailed
		}
		if err != nil || end {
			return err
		}
	}
}

// fail picks the error for an attempt whose request or stream ended early. The caller's own
// cancellation comes back as its context error; a timeout before the first token and a
// failure to connect are ErrUnavailable; a stream broken after it started is ErrFailed.
func (p *httpProvider) fail(ctx, actx context.Context, dog *watchdog, answered bool, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", p.kind, context.Cause(ctx))
	}
	started := dog.started.Load()
	switch cause := context.Cause(actx); cause {
	case errFirstToken, errTotal:
		if !started {
			return fmt.Errorf("%s: %w: %w", p.kind, ErrUnavailable, cause)
		}
		return fmt.Errorf("%s: %w: %w", p.kind, ErrFailed, cause)
	case errIdle:
		return fmt.Errorf("%s: %w: %w", p.kind, ErrFailed, cause)
	}
	if !answered {
		return fmt.Errorf("%s: %w: %w", p.kind, ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w: %w", p.kind, ErrFailed, err)
}

// netDetail marks a network timeout as such. The error names the configured URL (never a
// key or content) and the network operation that failed.
func netDetail(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("timeout: %w", err)
	}
	return err
}

// watchdog cancels an attempt when no output arrives within the first-token timeout, or no
// event within the idle timeout after output started, or the total timeout passed. An event
// only notes the time: the timer, when it fires early, waits again for the rest of the idle
// timeout, which is cheaper than resetting the timer at every event.
type watchdog struct {
	timer   *time.Timer
	idle    time.Duration
	total   time.Duration // since base; 0: none
	base    time.Time     // the clock's origin, read with its monotonic reading
	last    atomic.Int64  // when the last event came, as time since base
	started atomic.Bool
}

func startWatchdog(t Timeouts, cancel context.CancelCauseFunc) *watchdog {
	d := &watchdog{idle: t.Idle, total: t.Total, base: time.Now()}
	d.timer = time.AfterFunc(d.capped(t.FirstToken, 0), func() {
		now := time.Since(d.base)
		switch {
		case d.total > 0 && now >= d.total:
			cancel(errTotal)
		case !d.started.Load():
			cancel(errFirstToken) // the timer fires before the total only at the first-token timeout
		default:
			if rest := d.idle - (now - time.Duration(d.last.Load())); rest > 0 {
				d.timer.Reset(d.capped(rest, now))
				return
			}
			cancel(errIdle)
		}
	})
	return d
}

// capped is wait, from now (since base), cut short to end at the total timeout.
func (d *watchdog) capped(wait, now time.Duration) time.Duration {
	if d.total > 0 {
		return min(wait, d.total-now)
	}
	return wait
}

// event notes that the stream is alive.
func (d *watchdog) event() {
	if d.started.Load() {
		d.last.Store(int64(time.Since(d.base)))
	}
}

// token notes a piece of output: the first one switches to the idle timeout.
func (d *watchdog) token() {
	if !d.started.Load() {
		now := time.Since(d.base)
		d.last.Store(int64(now))
		d.started.Store(true)
		d.timer.Reset(d.capped(d.idle, now))
	}
}

func (d *watchdog) stop() { d.timer.Stop() }

// statusError turns a non-200 answer into ErrUnavailable (429, 502, 503, 504, 529: the
// provider is busy or away) or ErrFailed, with the status and the provider's error type and
// code. The provider's message is never included: it may quote the prompt.
func statusError(resp *http.Response) error {
	class := ErrFailed
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable,
		http.StatusGatewayTimeout, 529:
		class = ErrUnavailable
	}
	body := readSome(resp.Body)
	defer clear(body)
	return fmt.Errorf("%w: status %d%s", class, resp.StatusCode, errorDetail(body))
}

// readSome reads at most 64 KiB of an error body.
func readSome(r io.Reader) []byte {
	b, _ := io.ReadAll(io.LimitReader(r, 64<<10))
	return b
}

// apiError is the error object of OpenAI ({"error":{"type","code","message"}}) and Anthropic
// ({"type":"error","error":{"type","message"}}). Only type and code are read.
type apiError struct {
	Type jsonText        `json:"type"`
	Code json.RawMessage `json:"code"`
}

// errorDetail returns " (type: x, code: y)" from an error body, or "".
func errorDetail(body []byte) string {
	var e struct {
		Error json.RawMessage `json:"error"`
	}
	defer func() { clear(e.Error) }() // the provider's message may quote the prompt
	if json.Unmarshal(body, &e) != nil || len(e.Error) == 0 || e.Error[0] != '{' {
		return ""
	}
	var ae apiError
	if json.Unmarshal(e.Error, &ae) != nil {
		return ""
	}
	return ae.detail()
}

func (e *apiError) detail() string {
	var parts []string
	if t := safeToken(e.Type); t != "" {
		parts = append(parts, "type: "+t)
	}
	code := []byte(e.Code)
	if len(code) > 0 && code[0] == '"' {
		code, _ = appendUnquote(nil, code)
	}
	if c := safeToken(code); c != "" && c != "null" {
		parts = append(parts, "code: "+c)
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// safeToken returns b when it looks like an identifier (letters, digits, _ . -, at most 64
// bytes), else "": only such values go into error messages.
func safeToken(b []byte) string {
	if len(b) == 0 || len(b) > 64 {
		return ""
	}
	for _, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return ""
		}
	}
	return string(b)
}
