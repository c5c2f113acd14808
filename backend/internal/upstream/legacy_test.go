package upstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	wire "github.com/codingplan/codingplan/shared"
)

// The event decoding this package did before eventDecoder: encoding/json's Unmarshal of a small
// struct per event. Kept as the oracle of the fuzz tests and the baseline of BenchmarkRelay.

type legacyOpenAIChat struct{ chunk legacyOpenAIChunk }

func (c *legacyOpenAIChat) encode(req *Request, m *ModelConfig) ([]byte, int, error) {
	return (&openAIChat{}).encode(req, m)
}

func (c *legacyOpenAIChat) event(_, data []byte, st *streamState) (bool, error) {
	return c.chunk.handle(data, st, false)
}

func (c *legacyOpenAIChat) clear() {}

type legacyCompletions struct{ chunk legacyOpenAIChunk }

func (c *legacyCompletions) encode(req *Request, m *ModelConfig) ([]byte, int, error) {
	return (&openAICompletions{}).encode(req, m)
}

func (c *legacyCompletions) event(_, data []byte, st *streamState) (bool, error) {
	return c.chunk.handle(data, st, true)
}

func (c *legacyCompletions) clear() {}

type legacyOpenAIChunk struct {
	Choices []legacyOpenAIChoice `json:"choices"`
	Usage   *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
	Error *apiError `json:"error"`
}

type legacyOpenAIChoice struct {
	Index int `json:"index"`
	Delta struct {
		Content jsonText `json:"content"`
	} `json:"delta"`
	Text         jsonText `json:"text"`
	FinishReason jsonText `json:"finish_reason"`
}

func (c *legacyOpenAIChunk) handle(data []byte, st *streamState, completions bool) (bool, error) {
	if bytes.Equal(data, doneMarker) {
		return true, nil
	}
	all := c.Choices[:cap(c.Choices)]
	for i := range all {
		ch := &all[i]
		ch.Index = 0
		ch.Delta.Content = ch.Delta.Content[:0]
		ch.Text = ch.Text[:0]
		ch.FinishReason = ch.FinishReason[:0]
	}
	c.Choices = c.Choices[:0]
	c.Usage, c.Error = nil, nil
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
			continue
		}
		text := ch.Delta.Content
		if completions {
			text = ch.Text
		}
		if err := st.emit(0, text); err != nil {
			return false, err
		}
		if len(ch.FinishReason) > 0 {
			st.res.FinishReason = finishReason(ch.FinishReason)
		}
	}
	return false, nil
}

type legacyAnthropic struct {
	Type  jsonText `json:"type"`
	Delta struct {
		Type       jsonText `json:"type"`
		Text       jsonText `json:"text"`
		StopReason jsonText `json:"stop_reason"`
	} `json:"delta"`
	Message struct {
		Usage legacyAnthropicUsage `json:"usage"`
	} `json:"message"`
	Usage legacyAnthropicUsage `json:"usage"`
	Error *apiError            `json:"error"`
}

type legacyAnthropicUsage struct {
	InputTokens              int `json:"input_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
	OutputTokens             int `json:"output_tokens"`
}

func (u *legacyAnthropicUsage) input() int {
	return u.InputTokens + u.CacheCreationInputTokens + u.CacheReadInputTokens
}

func (e *legacyAnthropic) encode(req *Request, m *ModelConfig) ([]byte, int, error) {
	return (&anthropic{}).encode(req, m)
}

func (e *legacyAnthropic) clear() {}

func (e *legacyAnthropic) event(_, data []byte, st *streamState) (bool, error) {
	e.Type, e.Delta.Type, e.Delta.Text, e.Delta.StopReason = e.Type[:0], e.Delta.Type[:0], e.Delta.Text[:0], e.Delta.StopReason[:0]
	e.Message.Usage, e.Usage, e.Error = legacyAnthropicUsage{}, legacyAnthropicUsage{}, nil
	if err := json.Unmarshal(data, e); err != nil {
		return false, fmt.Errorf("%w: malformed event: %s", ErrFailed, jsonProblem(err))
	}
	switch string(e.Type) {
	case "content_block_delta":
		if string(e.Delta.Type) == "text_delta" {
			return false, st.emit(0, e.Delta.Text)
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
	return false, nil
}

// jsonProblem describes a decoding error by kind and offset only: encoding/json's messages
// can quote the input.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return "syntax error at byte " + strconv.FormatInt(se.Offset, 10)
	case errors.As(err, &te):
		return "field " + safeToken([]byte(te.Field)) + " has the wrong type"
	case errors.Is(err, errBadString):
		return "bad string"
	}
	return "not a JSON object"
}
