package upstream

import (
	"encoding/json"
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

// anthropicEvent is what is read of an event: its type, a text delta, the stop reason, the
// usage of message_start and message_delta, and an error's type.
type anthropicEvent struct {
	Type  jsonText `json:"type"`
	Delta struct {
		Type       jsonText `json:"type"`
		Text       jsonText `json:"text"`
		StopReason jsonText `json:"stop_reason"`
	} `json:"delta"`
	Message struct {
		Usage anthropicUsage `json:"usage"`
	} `json:"message"`
	Usage anthropicUsage `json:"usage"`
	Error *apiError      `json:"error"`
}

type anthropicUsage struct {
	InputTokens              int `json:"input_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
	OutputTokens             int `json:"output_tokens"`
}

func (u *anthropicUsage) input() int {
	return u.InputTokens + u.CacheCreationInputTokens + u.CacheReadInputTokens
}

func (c *anthropic) event(_, data []byte, st *streamState) (bool, error) {
	e := &c.ev
	e.Type, e.Delta.Type, e.Delta.Text, e.Delta.StopReason = e.Type[:0], e.Delta.Type[:0], e.Delta.Text[:0], e.Delta.StopReason[:0]
	e.Message.Usage, e.Usage, e.Error = anthropicUsage{}, anthropicUsage{}, nil
	if err := json.Unmarshal(data, e); err != nil {
		return false, fmt.Errorf("%w: malformed event: %s", ErrFailed, jsonProblem(err))
	}
	// The event's type is in its data as well as in its event: line; the data is what the
	// API documents as authoritative.
	switch string(e.Type) {
	case "content_block_delta":
		if string(e.Delta.Type) == "text_delta" {
			return false, st.emit(e.Delta.Text)
		}
	case "message_start":
		st.usageSeen = true
		st.res.Usage.PromptTokens = e.Message.Usage.input()
		st.res.Usage.CompletionTokens = e.Message.Usage.OutputTokens
	case "message_delta":
		if len(e.Delta.StopReason) > 0 {
			st.res.FinishReason = finishReason(e.Delta.StopReason)
		}
		st.usageSeen = true
		if n := e.Usage.input(); n > 0 {
			st.res.Usage.PromptTokens = n
		}
		st.res.Usage.CompletionTokens = e.Usage.OutputTokens
	case "message_stop":
		return true, nil
	case "error":
		detail := ""
		if e.Error != nil {
			detail = e.Error.detail()
		}
		return false, fmt.Errorf("%w: error event%s", ErrFailed, detail)
	}
	// ping, content_block_start, content_block_stop, and event types added later.
	return false, nil
}
