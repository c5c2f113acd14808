package upstream

import (
	"fmt"
	"net/http"
	"strings"

	wire "github.com/codingplan/codingplan/shared"
)

// AnthropicVersion is the API version this package speaks.
const AnthropicVersion = "2023-06-01"

func anthropicHeader(h http.Header, key wire.Secret) {
	if key != "" {
		h.Set("X-Api-Key", string(key))
	}
	h.Set("Anthropic-Version", AnthropicVersion)
}

// anthropic is the codec of POST {base_url}/v1/messages.
type anthropic struct{ ev anthropicEvent }

func (c *anthropic) encode(req *Request, m *ModelConfig) ([]byte, int, error) {
	w := &body{b: make([]byte, 0, 1024+promptSize(req))}
	w.raw(`{"model":`)
	w.str(modelID(req, m))
	w.raw(`,"stream":true,"max_tokens":`)
	w.int(maxTokens(req, m))
	// The API refuses stop sequences made only of blank space ("\n\n").
	notBlank := func(s string) bool { return strings.TrimSpace(s) != "" }
	if s := stops(req, m, 0, notBlank); len(s) > 0 {
		w.raw(`,"stop_sequences":`)
		w.strs(s)
	}
	w.raw(`,"system":`)
	w.prompt = 0
	systemPrompt(w, req)
	w.raw(`,"messages":[{"role":"user","content":`)
	userPrompt(w, req)
	w.raw(`}]}`)
	return w.b, w.prompt, nil
}

// anthropicEvent reads an event: its type, a text delta, the stop reason, the usage of
// message_start and message_delta, and an error's type. Its buffers are reused from event to
// event.
type anthropicEvent struct {
	d          eventDecoder
	typ        []byte
	deltaType  []byte
	text       []byte
	stopReason []byte
	message    anthropicUsage // message.usage
	usage      anthropicUsage
	apiErr     apiError
	hasError   bool

	// content_block_delta events of a stream differ only in their text (see textTemplate).
	tmpl textTemplate
	spot textSpot // the delta.text strings of the event being decoded
}

type anthropicUsage struct {
	InputTokens              int
	CacheCreationInputTokens int
	CacheReadInputTokens     int
	OutputTokens             int
}

func (u *anthropicUsage) input() int {
	return u.InputTokens + u.CacheCreationInputTokens + u.CacheReadInputTokens
}

func (c *anthropic) event(_, data []byte, st *streamState) (bool, error) {
	e := &c.ev
	if err := e.decode(data); err != nil {
		return false, fmt.Errorf("%w: malformed event: %s", ErrFailed, decodeProblem(err))
	}
	// The event's type is in its data as well as in its event: line; the data is what the
	// API documents as authoritative.
	switch string(e.typ) {
	case "content_block_delta":
		if string(e.deltaType) == "text_delta" {
			return false, st.emit(0, e.text)
		}
	case "message_start":
		st.usageSeen = true
		st.res.Usage.PromptTokens = e.message.input()
		st.res.Usage.CompletionTokens = e.message.OutputTokens
	case "message_delta":
		if len(e.stopReason) > 0 {
			st.finish(0, finishReason(e.stopReason))
		}
		st.usageSeen = true
		if n := e.usage.input(); n > 0 {
			st.res.Usage.PromptTokens = n
		}
		st.res.Usage.CompletionTokens = e.usage.OutputTokens
	case "message_stop":
		return true, nil
	case "error":
		detail := ""
		if e.hasError {
			detail = e.apiErr.detail()
		}
		return false, fmt.Errorf("%w: error event%s", ErrFailed, detail)
	}
	// ping, content_block_start, content_block_stop, and event types added later.
	return false, nil
}

func (c *anthropic) clear() {
	e := &c.ev
	e.tmpl.clear()
	for _, b := range [][]byte{e.typ, e.deltaType, e.text, e.stopReason, e.d.name} {
		clear(b[:cap(b)])
	}
	e.d.reset(nil)
}

// decode reads the fields of one event: {"type","delta":{"type","text","stop_reason"},
// "message":{"usage":{...}},"usage":{...},"error":{"type","code"}}.
func (e *anthropicEvent) decode(data []byte) error {
	e.typ, e.deltaType, e.text, e.stopReason = e.typ[:0], e.deltaType[:0], e.text[:0], e.stopReason[:0]
	e.message, e.usage, e.hasError = anthropicUsage{}, anthropicUsage{}, false
	if text, ok := e.tmpl.match(e.text, data); ok {
		e.text = text
		e.typ = append(e.typ, "content_block_delta"...)
		e.deltaType = append(e.deltaType, "text_delta"...)
		return nil
	}
	e.spot = textSpot{}
	if err := e.walk(data); err != nil {
		return err
	}
	// Learn from a text delta that carried nothing else the codec reads.
	if string(e.typ) == "content_block_delta" && string(e.deltaType) == "text_delta" && e.spot.n == 1 &&
		len(e.stopReason) == 0 && !e.hasError && e.message == (anthropicUsage{}) && e.usage == (anthropicUsage{}) {
		e.tmpl.learn(data, e.spot.at)
	}
	return nil
}

// walk decodes data with the tokenizer.
func (e *anthropicEvent) walk(data []byte) error {
	d := &e.d
	d.reset(data)
	_, err := d.members("event", func(name []byte) (err error) {
		switch string(name) {
		case "type":
			e.typ, err = d.text(e.typ, "type")
		case "delta":
			err = e.delta()
		case "message":
			err = e.decodeMessage()
		case "usage":
			err = d.anthropicUsage(&e.usage, "usage")
		case "error":
			e.hasError, err = d.apiError(&e.apiErr)
		default:
			err = d.skip()
		}
		return err
	})
	if err != nil {
		return err
	}
	return d.end()
}

func (e *anthropicEvent) delta() error {
	d := &e.d
	_, err := d.members("delta", func(name []byte) (err error) {
		switch string(name) {
		case "type":
			e.deltaType, err = d.text(e.deltaType, "delta.type")
		case "text":
			if e.text, err = d.text(e.text, "delta.text"); err == nil {
				e.spot.note(d)
			}
		case "stop_reason":
			e.stopReason, err = d.text(e.stopReason, "delta.stop_reason")
		default:
			err = d.skip()
		}
		return err
	})
	return err
}

func (e *anthropicEvent) decodeMessage() error {
	d := &e.d
	_, err := d.members("message", func(name []byte) error {
		if string(name) == "usage" {
			return d.anthropicUsage(&e.message, "message.usage")
		}
		return d.skip()
	})
	return err
}

// anthropicUsage reads a usage object into u, or null.
func (d *eventDecoder) anthropicUsage(u *anthropicUsage, field string) error {
	_, err := d.members(field, func(name []byte) (err error) {
		switch string(name) {
		case "input_tokens":
			u.InputTokens, err = d.int("input_tokens")
		case "cache_creation_input_tokens":
			u.CacheCreationInputTokens, err = d.int("cache_creation_input_tokens")
		case "cache_read_input_tokens":
			u.CacheReadInputTokens, err = d.int("cache_read_input_tokens")
		case "output_tokens":
			u.OutputTokens, err = d.int("output_tokens")
		default:
			err = d.skip()
		}
		return err
	})
	return err
}
