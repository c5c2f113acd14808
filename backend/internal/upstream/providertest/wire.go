package providertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// created is the fixed "created" time of every chunk, so replies are byte-for-byte stable.
const created = 1735689600

// writer writes one streamed reply in its API's format.
type writer struct {
	w      http.ResponseWriter
	api    string
	req    *Request
	reply  *Reply
	ctx    context.Context
	done   <-chan struct{}
	chunks int
	err    error
	// choices are the chunks of each choice: one, or the request's n for the OpenAI APIs.
	choices [][]string
}

// stream writes the reply and returns the end reason.
func (wr *writer) stream() string {
	r := wr.reply
	wr.choices = [][]string{r.Chunks}
	if wr.api != Anthropic {
		wr.choices = r.Choices(wr.req.N)
	}
	if r.HangBeforeHeaders {
		return wait(wr.ctx, wr.done, -1)
	}
	h := wr.w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	if wr.api == Anthropic {
		h.Set("Request-Id", fmt.Sprintf("req_fake%d", wr.req.ID))
	} else {
		h.Set("X-Request-Id", fmt.Sprintf("req_fake%d", wr.req.ID))
	}
	wr.w.WriteHeader(http.StatusOK)
	wr.begin()
	if wr.flush(); wr.err != nil {
		return ReasonClientGone
	}
	if r.Hang {
		return wait(wr.ctx, wr.done, -1)
	}
	// With n choices, OpenAI interleaves them: chunk i of every choice, each in an event of its
	// own that names the choice's index, then chunk i+1.
	rounds := 0
	for _, cs := range wr.choices {
		rounds = max(rounds, len(cs))
	}
	for i := range rounds {
		if r.Delay > 0 {
			if reason := wait(wr.ctx, wr.done, r.Delay); reason != "" {
				return reason
			}
		}
		if r.Pace != nil {
			if err := r.Pace(wr.ctx, i); err != nil {
				return ReasonClientGone
			}
		}
		if wr.ctx.Err() != nil {
			return ReasonClientGone
		}
		written := 0
		for index, cs := range wr.choices {
			if i < len(cs) {
				wr.text(index, cs[i])
				written++
			}
		}
		if wr.flush(); wr.err != nil {
			return ReasonClientGone
		}
		wr.chunks += written
	}
	switch {
	case r.Malformed:
		wr.line(`data: {"id":"chatcmpl-fake","choices":[{"index":0,"delta":{"content":"unterminated`)
		wr.line("")
	case r.StreamError:
		wr.streamError()
	case r.Abort:
		wr.flush()
		return ReasonAbort
	}
	if r.Malformed || r.StreamError || r.Cut {
		wr.flush()
		return ReasonCut
	}
	wr.finish()
	if wr.flush(); wr.err != nil {
		return ReasonClientGone
	}
	return ReasonDone
}

func (wr *writer) line(s string) {
	if wr.err != nil {
		return
	}
	if wr.reply.CRLF {
		_, wr.err = fmt.Fprintf(wr.w, "%s\r\n", s)
	} else {
		_, wr.err = fmt.Fprintf(wr.w, "%s\n", s)
	}
}

// event writes one SSE event: an optional comment, event: name (when not empty), data: v.
func (wr *writer) event(name string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err) // the values are this package's own types
	}
	if wr.reply.Comments {
		wr.line(": keep-alive")
	}
	if name != "" {
		wr.line("event: " + name)
	}
	wr.line("data: " + string(data))
	wr.line("")
}

func (wr *writer) flush() {
	if wr.err == nil {
		flush(wr.w)
	}
}

// OpenAI shapes, fields in the order the API writes them.

type chatChunk struct {
	ID                string          `json:"id"`
	Object            string          `json:"object"`
	Created           int64           `json:"created"`
	Model             string          `json:"model"`
	SystemFingerprint string          `json:"system_fingerprint"`
	Choices           []chatChoice    `json:"choices"`
	Usage             json.RawMessage `json:"usage,omitempty"`
}

type chatChoice struct {
	Index        int             `json:"index"`
	Delta        chatDelta       `json:"delta"`
	Logprobs     json.RawMessage `json:"logprobs"`
	FinishReason *string         `json:"finish_reason"`
}

type chatDelta struct {
	Role    string          `json:"role,omitempty"`
	Content *string         `json:"content,omitempty"`
	Refusal json.RawMessage `json:"refusal,omitempty"`
}

type textChunk struct {
	ID                string          `json:"id"`
	Object            string          `json:"object"`
	Created           int64           `json:"created"`
	Choices           []textChoice    `json:"choices"`
	Model             string          `json:"model"`
	SystemFingerprint string          `json:"system_fingerprint"`
	Usage             json.RawMessage `json:"usage,omitempty"`
}

type textChoice struct {
	Text         string          `json:"text"`
	Index        int             `json:"index"`
	Logprobs     json.RawMessage `json:"logprobs"`
	FinishReason *string         `json:"finish_reason"`
}

type openAIUsage struct {
	PromptTokens            int `json:"prompt_tokens"`
	CompletionTokens        int `json:"completion_tokens"`
	TotalTokens             int `json:"total_tokens"`
	PromptTokensDetails     any `json:"prompt_tokens_details,omitempty"`
	CompletionTokensDetails any `json:"completion_tokens_details,omitempty"`
}

var null = json.RawMessage("null")

func (wr *writer) id() string {
	if wr.api == OpenAICompletions {
		return "cmpl-fake" + strconv.FormatInt(wr.req.ID, 10)
	}
	return "chatcmpl-fake" + strconv.FormatInt(wr.req.ID, 10)
}

// usageField is "usage": null on each chunk when the client asked for usage.
func (wr *writer) usageField() json.RawMessage {
	if wr.req.IncludeUsage {
		return null
	}
	return nil
}

// chat is a chat chunk for the choice index.
func (wr *writer) chat(index int, delta chatDelta, finish *string) chatChunk {
	return chatChunk{ID: wr.id(), Object: "chat.completion.chunk", Created: created, Model: wr.req.Model,
		SystemFingerprint: "fp_fake", Choices: []chatChoice{{Index: index, Delta: delta, Logprobs: null, FinishReason: finish}},
		Usage: wr.usageField()}
}

// completion is a completions chunk for the choice index.
func (wr *writer) completion(index int, text string, finish *string) textChunk {
	return textChunk{ID: wr.id(), Object: "text_completion", Created: created, Model: wr.req.Model,
		SystemFingerprint: "fp_fake", Choices: []textChoice{{Text: text, Index: index, Logprobs: null, FinishReason: finish}},
		Usage: wr.usageField()}
}

func (wr *writer) usage() Usage {
	if u := wr.reply.Usage; u != nil {
		return *u
	}
	completion := 0
	for _, cs := range wr.choices {
		completion += len(cs)
	}
	return Usage{PromptTokens: (len(wr.req.System) + len(wr.req.Prompt) + len(wr.req.Suffix) + 3) / 4, CompletionTokens: completion}
}

// begin writes what precedes the text.
func (wr *writer) begin() {
	switch wr.api {
	case OpenAIChat:
		empty := ""
		for index := range wr.choices {
			wr.event("", wr.chat(index, chatDelta{Role: "assistant", Content: &empty, Refusal: null}, nil))
		}
	case Anthropic:
		u := wr.usage()
		wr.event("message_start", struct {
			Type    string           `json:"type"`
			Message anthropicMessage `json:"message"`
		}{"message_start", anthropicMessage{
			ID: fmt.Sprintf("msg_fake%d", wr.req.ID), Type: "message", Role: "assistant", Model: wr.req.Model,
			Content: []any{}, Usage: anthropicUsage{InputTokens: u.PromptTokens, OutputTokens: 1},
		}})
		wr.event("content_block_start", struct {
			Type         string    `json:"type"`
			Index        int       `json:"index"`
			ContentBlock textDelta `json:"content_block"`
		}{"content_block_start", 0, textDelta{Type: "text"}})
		wr.line("event: ping")
		wr.line(`data: {"type": "ping"}`)
		wr.line("")
	}
}

// text writes one piece of the text of the choice index.
func (wr *writer) text(index int, s string) {
	switch wr.api {
	case OpenAIChat:
		wr.event("", wr.chat(index, chatDelta{Content: &s}, nil))
	case OpenAICompletions:
		wr.event("", wr.completion(index, s, nil))
	case Anthropic:
		wr.event("content_block_delta", anthropicDelta{Type: "content_block_delta", Index: 0,
			Delta: textDelta{Type: "text_delta", Text: s}})
	}
}

// finish writes the finish reason, the usage and the end marker.
func (wr *writer) finish() {
	reason := wr.reply.finishOf(0)
	u := wr.usage()
	ou := openAIUsage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens,
		TotalTokens: u.PromptTokens + u.CompletionTokens}
	switch wr.api {
	case OpenAIChat:
		for index := range wr.choices {
			reason := wr.reply.finishOf(index)
			wr.event("", wr.chat(index, chatDelta{}, &reason))
		}
		if wr.req.IncludeUsage && !wr.reply.NoUsage {
			ou.PromptTokensDetails = map[string]int{"cached_tokens": 0, "audio_tokens": 0}
			ou.CompletionTokensDetails = map[string]int{"reasoning_tokens": 0, "audio_tokens": 0,
				"accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
			c := wr.chat(0, chatDelta{}, nil)
			c.Choices, c.Usage = []chatChoice{}, mustJSON(ou)
			wr.event("", c)
		}
		wr.line("data: [DONE]")
		wr.line("")
	case OpenAICompletions:
		for index := range wr.choices {
			reason := wr.reply.finishOf(index)
			wr.event("", wr.completion(index, "", &reason))
		}
		if wr.req.IncludeUsage && !wr.reply.NoUsage {
			c := wr.completion(0, "", nil)
			c.Choices, c.Usage = []textChoice{}, mustJSON(ou)
			wr.event("", c)
		}
		wr.line("data: [DONE]")
		wr.line("")
	case Anthropic:
		wr.event("content_block_stop", struct {
			Type  string `json:"type"`
			Index int    `json:"index"`
		}{"content_block_stop", 0})
		stop := map[string]string{"stop": "end_turn", "length": "max_tokens"}[reason]
		if stop == "" {
			stop = reason
		}
		type stopDelta struct {
			StopReason   string  `json:"stop_reason"`
			StopSequence *string `json:"stop_sequence"`
		}
		type outputUsage struct {
			OutputTokens int `json:"output_tokens"`
		}
		md := struct {
			Type  string       `json:"type"`
			Delta stopDelta    `json:"delta"`
			Usage *outputUsage `json:"usage,omitempty"`
		}{Type: "message_delta", Delta: stopDelta{StopReason: stop}}
		if !wr.reply.NoUsage {
			md.Usage = &outputUsage{u.CompletionTokens}
		}
		wr.event("message_delta", md)
		wr.event("message_stop", struct {
			Type string `json:"type"`
		}{"message_stop"})
	}
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// Anthropic shapes.

type anthropicMessage struct {
	ID           string         `json:"id"`
	Type         string         `json:"type"`
	Role         string         `json:"role"`
	Model        string         `json:"model"`
	Content      []any          `json:"content"`
	StopReason   *string        `json:"stop_reason"`
	StopSequence *string        `json:"stop_sequence"`
	Usage        anthropicUsage `json:"usage"`
}

type anthropicUsage struct {
	InputTokens              int `json:"input_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
	OutputTokens             int `json:"output_tokens"`
}

type anthropicDelta struct {
	Type  string    `json:"type"`
	Index int       `json:"index"`
	Delta textDelta `json:"delta"`
}

type textDelta struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// Errors.

// errorKind returns the API's error type and code for status.
func errorKind(api string, status int) (typ, code string) {
	if api == Anthropic {
		switch status {
		case 400:
			return "invalid_request_error", ""
		case 401:
			return "authentication_error", ""
		case 403:
			return "permission_error", ""
		case 404:
			return "not_found_error", ""
		case 413:
			return "request_too_large", ""
		case 429:
			return "rate_limit_error", ""
		case 529:
			return "overloaded_error", ""
		}
		if status >= 500 {
			return "api_error", ""
		}
		return "invalid_request_error", ""
	}
	switch status {
	case 401:
		return "invalid_request_error", "invalid_api_key"
	case 404:
		return "invalid_request_error", "model_not_found"
	case 429:
		return "requests", "rate_limit_exceeded"
	}
	if status >= 500 {
		return "server_error", ""
	}
	return "invalid_request_error", ""
}

// message is the reply's error message, by default one that quotes the prompt as some real
// validation errors do, so tests can check that it goes no further.
func (r *Reply) message(req *Request) string {
	if r.ErrorMessage != "" {
		return r.ErrorMessage
	}
	p := req.Prompt
	if len(p) > 64 {
		p = p[:64]
	}
	return fmt.Sprintf("Invalid request near %q. Please try again.", p)
}

func errorBody(api string, req *Request, r *Reply, status int) any {
	typ, code := errorKind(api, status)
	if r.ErrorType != "" {
		typ = r.ErrorType
	}
	if r.ErrorCode != "" {
		code = r.ErrorCode
	}
	if api == Anthropic {
		type anthropicError struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		}
		return struct {
			Type  string         `json:"type"`
			Error anthropicError `json:"error"`
			ID    string         `json:"request_id"`
		}{"error", anthropicError{typ, r.message(req)}, fmt.Sprintf("req_fake%d", req.ID)}
	}
	type openAIError struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	}
	e := openAIError{Message: r.message(req), Type: typ}
	if code != "" {
		e.Code = &code
	}
	if r.ErrorParam != "" {
		e.Param = &r.ErrorParam
	}
	return struct {
		Error openAIError `json:"error"`
	}{e}
}

// writeError answers with r.Status and the API's error JSON.
func writeError(w http.ResponseWriter, api string, req *Request, r *Reply) {
	// The APIs write "<", ">" and "&" as they are, not as Go's \u003c escapes.
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "    ")
	_ = enc.Encode(errorBody(api, req, r, r.Status)) // this package's own types
	w.Header().Set("Content-Type", "application/json")
	if r.Status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(r.Status)
	_, _ = w.Write(body.Bytes())
}

// streamError writes the API's in-stream error event.
func (wr *writer) streamError() {
	status := 500
	if wr.api == Anthropic {
		status = 529
	}
	wr.event(map[bool]string{true: "error"}[wr.api == Anthropic], errorBody(wr.api, wr.req, wr.reply, status))
}
