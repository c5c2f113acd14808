package upstream

import (
	"bytes"
	"encoding/json"
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

// openAICompletions is the codec of POST {base_url}/completions, with the suffix parameter or
// a FIM template.
type openAICompletions struct{ chunk openAIChunk }

func (c *openAICompletions) encode(req *Request, m *ModelConfig) ([]byte, int, error) {
	w := &body{b: make([]byte, 0, 512+promptSize(req))}
	w.raw(`{"model":`)
	w.str(modelID(req, m))
	w.raw(`,"stream":true,"stream_options":{"include_usage":true},"max_tokens":`)
	w.int(maxTokens(req, m))
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

// openAIChunk is what is read of a chunk of either API: the first choice's text (delta.content
// for chat, text for completions) and finish reason, the usage, and an error. Its buffers are
// reused from chunk to chunk.
type openAIChunk struct {
	Choices []openAIChoice `json:"choices"`
	Usage   *openAIUsage   `json:"usage"`
	Error   *apiError      `json:"error"`
}

type openAIChoice struct {
	Index int `json:"index"`
	Delta struct {
		Content jsonText `json:"content"`
	} `json:"delta"`
	Text         jsonText `json:"text"`
	FinishReason jsonText `json:"finish_reason"`
}

type openAIUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
}

var doneMarker = []byte("[DONE]")

// handle decodes one data event.
func (c *openAIChunk) handle(data []byte, st *streamState, completions bool) (bool, error) {
	if bytes.Equal(data, doneMarker) {
		return true, nil
	}
	c.reset()
	if err := json.Unmarshal(data, c); err != nil {
		return false, fmt.Errorf("%w: malformed chunk: %s", ErrFailed, jsonProblem(err))
	}
	if c.Error != nil {
		return false, fmt.Errorf("%w: error event%s", ErrFailed, c.Error.detail())
	}
	if c.Usage != nil {
		st.usageSeen = true
		st.res.Usage = wire.Usage{PromptTokens: c.Usage.PromptTokens, CompletionTokens: c.Usage.CompletionTokens}
	}
	for i := range c.Choices {
		ch := &c.Choices[i]
		if ch.Index != 0 {
			continue // we ask for one choice (n=1)
		}
		text := ch.Delta.Content
		if completions {
			text = ch.Text
		}
		if err := st.emit(text); err != nil {
			return false, err
		}
		if len(ch.FinishReason) > 0 {
			st.res.FinishReason = finishReason(ch.FinishReason)
		}
	}
	return false, nil
}

// reset empties the chunk for the next decode, keeping its buffers: encoding/json decodes
// into reused slice elements without zeroing them.
func (c *openAIChunk) reset() {
	all := c.Choices[:cap(c.Choices)]
	for i := range all {
		ch := &all[i]
		ch.Index = 0
		ch.Delta.Content = ch.Delta.Content[:0]
		ch.Text = ch.Text[:0]
		ch.FinishReason = ch.FinishReason[:0]
	}
	c.Choices = c.Choices[:0]
	c.Usage, c.Error = nil, nil // allocated only by the chunks that carry them
}
