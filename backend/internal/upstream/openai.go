package upstream

import (
	"bytes"
	"fmt"
	"net/http"

	wire "github.com/codingplan/codingplan/shared"
)

// openAIMaxStops is how many stop sequences the OpenAI APIs accept.
const openAIMaxStops = 4

// OptionMaxTokensField, an option of openai-chat models, names the request's output limit
// field: "max_tokens" (the default, what OpenAI-compatible servers read) or
// "max_completion_tokens" (what newer OpenAI models require).
const OptionMaxTokensField = "max_tokens_field"

func openAIHeader(h http.Header, key wire.Secret) {
	if key != "" {
		h.Set("Authorization", "Bearer "+string(key))
	}
}

// openAIChat is the codec of POST {base_url}/chat/completions.
type openAIChat struct{ chunk openAIChunk }

func (c *openAIChat) encode(req *Request, m *ModelConfig) ([]byte, int, error) {
	w := &body{b: make([]byte, 0, 1024+promptSize(req))}
	w.raw(`{"model":`)
	w.str(modelID(req, m))
	w.raw(`,"stream":true,"stream_options":{"include_usage":true},"`)
	if f := m.Options[OptionMaxTokensField]; f == "max_completion_tokens" {
		w.raw(f)
	} else {
		w.raw("max_tokens")
	}
	w.raw(`":`)
	w.int(maxTokens(req, m))
	c.chunk.several(w, req)
	if s := stops(req, m, openAIMaxStops, nil); len(s) > 0 {
		w.raw(`,"stop":`)
		w.strs(s)
	}
	w.raw(`,"messages":[{"role":"system","content":`)
	w.prompt = 0
	systemPrompt(w, req)
	w.raw(`},{"role":"user","content":`)
	userPrompt(w, req)
	w.raw(`}]}`)
	return w.b, w.prompt, nil
}

func (c *openAIChat) event(_, data []byte, st *streamState) (bool, error) {
	return c.chunk.handle(data, st, false)
}

func (c *openAIChat) clear() { c.chunk.clear() }

// openAICompletions is the codec of POST {base_url}/completions, with the suffix parameter or
// a FIM template.
type openAICompletions struct{ chunk openAIChunk }

func (c *openAICompletions) encode(req *Request, m *ModelConfig) ([]byte, int, error) {
	w := &body{b: make([]byte, 0, 512+promptSize(req))}
	w.raw(`{"model":`)
	w.str(modelID(req, m))
	w.raw(`,"stream":true,"stream_options":{"include_usage":true},"max_tokens":`)
	w.int(maxTokens(req, m))
	c.chunk.several(w, req)
	if s := stops(req, m, openAIMaxStops, nil); len(s) > 0 {
		w.raw(`,"stop":`)
		w.strs(s)
	}
	w.raw(`,"prompt":`)
	w.prompt = 0
	if fimPrompt(w, req, m.FIMTemplate) && req.Completion.Suffix != "" {
		w.raw(`,"suffix":`)
		w.str(string(req.Completion.Suffix))
	}
	w.raw(`}`)
	return w.b, w.prompt, nil
}

func (c *openAICompletions) event(_, data []byte, st *streamState) (bool, error) {
	return c.chunk.handle(data, st, true)
}

func (c *openAICompletions) clear() { c.chunk.clear() }

// openAIChunk reads a chunk of either API: the text (delta.content for chat, text for
// completions) and finish reason of each choice whose index is one the request asked for (0
// to n-1), the usage, and an error. Its buffers are reused from chunk to chunk.
type openAIChunk struct {
	d        eventDecoder
	n        int                         // suggestions asked for; 0 means 1
	text     [wire.MaxSuggestions][]byte // by index: the text of the choices with that index
	finish   [wire.MaxSuggestions][]byte // by index: the last finish reason of those
	content  []byte                      // one choice's delta.content
	alt      []byte                      // one choice's text
	reason   []byte                      // one choice's finish_reason
	usage    wire.Usage
	hasUsage bool
	apiErr   apiError
	hasError bool

	// A stream's text events differ only in their text (id, model, index, finish_reason
	// null... repeat): tmpl[i] decodes those of choice i from it (see textTemplate). The
	// index is in the bytes a template keeps, so a template never matches another choice.
	tmpl    [wire.MaxSuggestions]textTemplate
	spot    textSpot // the text strings of the event being decoded
	choiceN int      // choices read in it (one more for each with an index not asked for)
	chosen  int      // the index of the last choice read
}

// several writes the n parameter into a request body when req asks for more than one
// suggestion, and keeps how many, to read the choices of each.
func (c *openAIChunk) several(w *body, req *Request) {
	if c.n = req.suggestions(); c.n > 1 {
		w.raw(`,"n":`)
		w.int(c.n)
	}
}

// suggestions is how many choices the chunks are read for.
func (c *openAIChunk) suggestions() int { return max(c.n, 1) }

var doneMarker = []byte("[DONE]")

// handle decodes one data event.
func (c *openAIChunk) handle(data []byte, st *streamState, completions bool) (bool, error) {
	if bytes.Equal(data, doneMarker) {
		return true, nil
	}
	if err := c.decode(data, completions); err != nil {
		return false, fmt.Errorf("%w: malformed chunk: %s", ErrFailed, decodeProblem(err))
	}
	if c.hasError {
		return false, fmt.Errorf("%w: error event%s", ErrFailed, c.apiErr.detail())
	}
	if c.hasUsage {
		st.usageSeen = true
		st.res.Usage = c.usage
	}
	for i := range c.suggestions() {
		if err := st.emit(i, c.text[i]); err != nil {
			return false, err
		}
		if len(c.finish[i]) > 0 {
			st.finish(i, finishReason(c.finish[i]))
		}
	}
	return false, nil
}

// decode reads the fields of one chunk: {"choices":[{"index","delta":{"content"},"text",
// "finish_reason"}],"usage":{"prompt_tokens","completion_tokens"},"error":{"type","code"}}.
func (c *openAIChunk) decode(data []byte, completions bool) error {
	n := c.suggestions()
	for i := range n {
		c.text[i], c.finish[i] = c.text[i][:0], c.finish[i][:0]
	}
	c.usage, c.hasUsage, c.hasError = wire.Usage{}, false, false
	for i := range n {
		if text, ok := c.tmpl[i].match(c.text[i], data); ok {
			c.text[i] = text
			return nil
		}
	}
	c.spot, c.choiceN = textSpot{}, 0
	if err := c.walk(data, completions); err != nil {
		return err
	}
	c.learn(data)
	return nil
}

// learn makes data the template of its choice when it carried exactly one choice, with an
// index asked for, whose only text is one string, and no finish reason, usage or error.
func (c *openAIChunk) learn(data []byte) {
	if c.spot.n != 1 || c.choiceN != 1 || len(c.finish[c.chosen]) > 0 || c.hasUsage || c.hasError {
		return
	}
	c.tmpl[c.chosen].learn(data, c.spot.at)
}

// walk decodes data with the tokenizer.
func (c *openAIChunk) walk(data []byte, completions bool) error {
	d := &c.d
	d.reset(data)
	_, err := d.members("chunk", func(name []byte) (err error) {
		switch string(name) {
		case "choices":
			err = c.choices(completions)
		case "usage":
			err = c.decodeUsage()
		case "error":
			c.hasError, err = d.apiError(&c.apiErr)
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

func (c *openAIChunk) choices(completions bool) error {
	d := &c.d
	ok, err := d.array("choices")
	for ok && err == nil {
		if ok, err = d.element(); ok && err == nil {
			err = c.choice(completions)
		}
	}
	return err
}

func (c *openAIChunk) choice(completions bool) error {
	d := &c.d
	c.content, c.alt, c.reason = c.content[:0], c.alt[:0], c.reason[:0]
	index := 0
	ok, err := d.members("choices", func(name []byte) (err error) {
		switch string(name) {
		case "index":
			index, err = d.int("index")
		case "delta":
			err = c.delta(completions)
		case "text":
			c.alt, err = c.readText(c.alt, "text", completions)
		case "finish_reason":
			c.reason, err = d.text(c.reason, "finish_reason")
		default:
			err = d.skip()
		}
		return err
	})
	if !ok || err != nil {
		return err // null: a choice with no text
	}
	c.choiceN++
	if index < 0 || index >= c.suggestions() {
		c.choiceN++ // not a choice asked for: skipped, and never a template
		return nil
	}
	c.chosen = index
	if completions {
		c.text[index] = wire.AppendClear(c.text[index], c.alt)
	} else {
		c.text[index] = wire.AppendClear(c.text[index], c.content)
	}
	if len(c.reason) > 0 {
		c.finish[index] = append(c.finish[index][:0], c.reason...)
	}
	return nil
}

// readText reads a string field; when it is the event's text (selected), it counts it and
// notes where it stands, for learn.
func (c *openAIChunk) readText(dst []byte, field string, selected bool) ([]byte, error) {
	v, err := c.d.text(dst, field)
	if err == nil && selected {
		c.spot.note(&c.d)
	}
	return v, err
}

func (c *openAIChunk) delta(completions bool) error {
	d := &c.d
	_, err := d.members("delta", func(name []byte) (err error) {
		if string(name) == "content" {
			c.content, err = c.readText(c.content, "content", !completions)
		} else {
			err = d.skip()
		}
		return err
	})
	return err
}

func (c *openAIChunk) decodeUsage() error {
	d := &c.d
	var err error
	c.hasUsage, err = d.members("usage", func(name []byte) (err error) {
		switch string(name) {
		case "prompt_tokens":
			c.usage.PromptTokens, err = d.int("prompt_tokens")
		case "completion_tokens":
			c.usage.CompletionTokens, err = d.int("completion_tokens")
		default:
			err = d.skip()
		}
		return err
	})
	return err
}

// clear zeroes the buffers, which held model output.
func (c *openAIChunk) clear() {
	for i := range c.tmpl {
		c.tmpl[i].clear()
		clear(c.text[i][:cap(c.text[i])])
		clear(c.finish[i][:cap(c.finish[i])])
	}
	for _, b := range [][]byte{c.content, c.alt, c.reason, c.d.name} {
		clear(b[:cap(b)])
	}
	c.d.reset(nil)
}
