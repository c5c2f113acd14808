package providertest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Request is what the server read of a model request.
type Request struct {
	ID           int64
	API          string // OpenAIChat, OpenAICompletions or Anthropic
	Path         string
	Header       http.Header
	Body         []byte // the raw JSON body
	APIKey       string // from "Authorization: Bearer" or x-api-key
	Model        string
	Stream       bool
	IncludeUsage bool // stream_options.include_usage
	MaxTokens    int  // max_tokens or max_completion_tokens
	Stop         []string
	System       string // the system prompt (chat, Anthropic)
	Prompt       string // the last user message (chat, Anthropic) or the prompt (completions)
	Suffix       string // completions' suffix
	N            int    // choices asked for ("n", OpenAI APIs only): 1 when absent
}

// Reply is how the server answers one request. The zero Reply streams no text and ends
// cleanly.
type Reply struct {
	// Status, when not 0 or 200, answers with that status and the API's error JSON.
	Status int
	// ErrorType and ErrorCode go in the error JSON (and in an in-stream error). Empty picks
	// what the real API sends for Status. ErrorMessage is the message; empty means one that
	// quotes the start of the prompt, as real validation errors can.
	ErrorType, ErrorCode, ErrorMessage string
	// ErrorParam is the OpenAI error's "param" (the request field at fault), empty for null.
	ErrorParam string

	// Chunks are the text pieces streamed, one chunk (or content_block_delta) each.
	Chunks []string
	// Alternatives are the chunks of choices 1, 2, ... for an OpenAI request with "n" above
	// 1 (see Choices); other requests get Chunks only. AlternativeFinish holds their finish
	// reasons; a missing or empty one is FinishReason.
	Alternatives      [][]string
	AlternativeFinish []string
	// FinishReason ends the stream: "stop" or "length" in OpenAI's terms (mapped to
	// end_turn and max_tokens for Anthropic). Empty means stop.
	FinishReason string
	// Usage is reported at the end; nil computes one (prompt bytes/4, one token per chunk).
	Usage *Usage
	// NoUsage sends no usage at all (an OpenAI-compatible server that ignores include_usage).
	NoUsage bool

	// Delay waits before each chunk. Pace, when set, is called before chunk i (from 0) and
	// may block, e.g. until the test has seen chunk i-1; an error from it ends the reply
	// like a client that went away.
	Delay time.Duration
	Pace  func(ctx context.Context, i int) error
	// HangBeforeHeaders waits, sending nothing, until the client goes away.
	HangBeforeHeaders bool
	// Hang sends the headers (and Anthropic's message_start) and then nothing, until the
	// client goes away.
	Hang bool
	// Cut ends the response cleanly after the chunks, without the end marker and usage.
	Cut bool
	// Abort breaks the connection after the chunks (no final chunk of the HTTP body).
	Abort bool
	// StreamError sends the API's in-stream error event after the chunks.
	StreamError bool
	// Malformed sends a data line that is not JSON after the chunks.
	Malformed bool
	// CRLF ends lines with CRLF instead of LF.
	CRLF bool
	// Comments sends an SSE comment line before every event (as some proxies do).
	Comments bool
}

// Choices returns the chunks of each of the n choices of a request (n from Request.N): Chunks
// first, then Alternatives; a choice with no alternative given streams Chunks with "/*i*/"
// before them (i its index), so every choice's text differs from every other's.
func (r *Reply) Choices(n int) [][]string {
	out := [][]string{r.Chunks}
	for i := 1; i < n; i++ {
		if i-1 < len(r.Alternatives) {
			out = append(out, r.Alternatives[i-1])
			continue
		}
		out = append(out, append([]string{fmt.Sprintf("/*%d*/", i)}, r.Chunks...))
	}
	return out
}

// After is a Pace that lets chunk 0 out at once and each later chunk once it receives from
// ch: a closed ch lets them all out, a nil one holds them until the client leaves.
func After(ch <-chan struct{}) func(ctx context.Context, i int) error {
	return func(ctx context.Context, i int) error {
		if i == 0 {
			return nil
		}
		select {
		case <-ch:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// finishOf is the finish reason of choice index, in OpenAI's terms.
func (r *Reply) finishOf(index int) string {
	reason := r.FinishReason
	if index > 0 && index-1 < len(r.AlternativeFinish) && r.AlternativeFinish[index-1] != "" {
		reason = r.AlternativeFinish[index-1]
	}
	if reason == "" {
		reason = "stop"
	}
	return reason
}

// Usage is token counts to report.
type Usage struct {
	PromptTokens, CompletionTokens int
}

// DefaultChunks is the reply to a model with no behaviour of its own.
var DefaultChunks = []string{"return", " a", " +", " b", "\n"}

// Behaviour returns the reply a model name selects when no script is set, and whether the
// name selects one:
//
//	echo        streams the prompt (the last user message) back in 8-byte chunks
//	slow        the default chunks, 50ms apart
//	hang        headers, then nothing until the client leaves
//	hang-headers nothing at all until the client leaves
//	cut         two chunks, then a clean end without [DONE] / message_stop
//	abort       two chunks, then a broken connection
//	stream-error one chunk, then the API's in-stream error event
//	malformed   one chunk, then a data line that is not JSON
//	long-line   one chunk of 100 KiB (a line over bufio.Scanner's 64 KiB)
//	huge-line   one chunk of 2 MiB (over upstream's 1 MiB line limit)
//	no-usage    the default chunks without usage data
//	error-NNN   status NNN with the API's error JSON (error-429, error-500, error-529, ...)
func Behaviour(model string, req *Request) (Reply, bool) {
	switch model {
	case "echo":
		return Reply{Chunks: Split(req.Prompt, 8)}, true
	case "slow":
		return Reply{Chunks: DefaultChunks, Delay: 50 * time.Millisecond}, true
	case "hang":
		return Reply{Hang: true}, true
	case "hang-headers":
		return Reply{HangBeforeHeaders: true}, true
	case "cut":
		return Reply{Chunks: DefaultChunks[:2], Cut: true}, true
	case "abort":
		return Reply{Chunks: DefaultChunks[:2], Abort: true}, true
	case "stream-error":
		return Reply{Chunks: DefaultChunks[:1], StreamError: true}, true
	case "malformed":
		return Reply{Chunks: DefaultChunks[:1], Malformed: true}, true
	case "long-line":
		return Reply{Chunks: []string{strings.Repeat("x", 100<<10)}}, true
	case "huge-line":
		return Reply{Chunks: []string{strings.Repeat("x", 2<<20)}}, true
	case "no-usage":
		return Reply{Chunks: DefaultChunks, NoUsage: true}, true
	}
	if code, ok := strings.CutPrefix(model, "error-"); ok {
		if n, err := strconv.Atoi(code); err == nil && n >= 400 && n <= 599 {
			return Reply{Status: n}, true
		}
	}
	return Reply{}, false
}

// SplitEven cuts s into n pieces of about the same length, on UTF-8 boundaries (fewer when s
// has fewer runes), e.g. to stream a reply as n tokens.
func SplitEven(s string, n int) []string {
	var out []string
	for n > 0 && len(s) > 0 {
		i := (len(s) + n - 1) / n
		for i < len(s) && !utf8.RuneStart(s[i]) {
			i++
		}
		out = append(out, s[:i])
		s = s[i:]
		n--
	}
	return out
}

// Split cuts s into pieces of at most n bytes (or one rune, if longer), on UTF-8 boundaries.
func Split(s string, n int) []string {
	var out []string
	for len(s) > 0 {
		i := min(n, len(s))
		for i < len(s) && i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		if i == 0 { // a rune longer than n goes whole
			_, i = utf8.DecodeRuneInString(s)
		}
		out = append(out, s[:i])
		s = s[i:]
	}
	return out
}

// SplitWords cuts s after each space, for a reply that streams word by word.
func SplitWords(s string) []string { return strings.SplitAfter(s, " ") }

func apiOf(path string) string {
	switch {
	case strings.HasSuffix(path, "/chat/completions"):
		return OpenAIChat
	case strings.HasSuffix(path, "/completions"):
		return OpenAICompletions
	case strings.HasSuffix(path, "/messages"):
		return Anthropic
	}
	return ""
}

// requestBody is the union of the three APIs' request fields that the server reads.
type requestBody struct {
	Model         string `json:"model"`
	Stream        bool   `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	MaxTokens           int             `json:"max_tokens"`
	MaxCompletionTokens int             `json:"max_completion_tokens"`
	Stop                json.RawMessage `json:"stop"`
	StopSequences       []string        `json:"stop_sequences"`
	System              json.RawMessage `json:"system"`
	Messages            []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Prompt json.RawMessage `json:"prompt"`
	Suffix string          `json:"suffix"`
	N      *int            `json:"n"`
}

// maxN is the most choices OpenAI's APIs accept in one request.
const maxN = 128

// parse reads a request; a non-nil Reply is the error to answer with.
func parse(r *http.Request, api string, id int64) (*Request, *Reply) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	req := &Request{ID: id, API: api, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	req.APIKey = r.Header.Get("X-Api-Key")
	if k, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		req.APIKey = k
	}
	var b requestBody
	if err != nil || json.Unmarshal(body, &b) != nil {
		return req, &Reply{Status: http.StatusBadRequest, ErrorMessage: "We could not parse the JSON body of your request."}
	}
	req.Model, req.Stream = b.Model, b.Stream
	req.IncludeUsage = b.StreamOptions != nil && b.StreamOptions.IncludeUsage
	req.MaxTokens = max(b.MaxTokens, b.MaxCompletionTokens)
	req.Stop = b.StopSequences
	if len(b.Stop) > 0 && b.Stop[0] == '"' {
		var s string
		_ = json.Unmarshal(b.Stop, &s)
		req.Stop = []string{s}
	} else if len(b.Stop) > 0 {
		_ = json.Unmarshal(b.Stop, &req.Stop)
	}
	req.System = text(b.System)
	for _, m := range b.Messages {
		switch m.Role {
		case "system", "developer":
			req.System = text(m.Content)
		case "user":
			req.Prompt = text(m.Content)
		}
	}
	if api == OpenAICompletions {
		req.Prompt, req.Suffix = text(b.Prompt), b.Suffix
	}
	req.N = 1
	if b.N != nil && api != Anthropic {
		switch n := *b.N; {
		case n < 1:
			return req, &Reply{Status: http.StatusBadRequest, ErrorCode: "integer_below_min_value", ErrorParam: "n",
				ErrorMessage: fmt.Sprintf("Invalid 'n': integer below minimum value. Expected a value >= 1, but got %d instead.", n)}
		case n > maxN:
			return req, &Reply{Status: http.StatusBadRequest, ErrorCode: "integer_above_max_value", ErrorParam: "n",
				ErrorMessage: fmt.Sprintf("Invalid 'n': integer above maximum value. Expected a value <= %d, but got %d instead.", maxN, n)}
		}
		req.N = *b.N
	}
	if api == Anthropic && b.MaxTokens <= 0 {
		return req, &Reply{Status: http.StatusBadRequest, ErrorMessage: "max_tokens: Field required"}
	}
	if !b.Stream {
		return req, &Reply{Status: http.StatusBadRequest, ErrorMessage: "this fake serves only stream: true"}
	}
	return req, nil
}

// text reads a string, or an array of content blocks or strings, as one string.
func text(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var blocks []json.RawMessage
	if json.Unmarshal(raw, &blocks) != nil {
		return ""
	}
	var sb strings.Builder
	for _, b := range blocks {
		var block struct {
			Text string `json:"text"`
		}
		if json.Unmarshal(b, &s) == nil {
			sb.WriteString(s)
		} else if json.Unmarshal(b, &block) == nil {
			sb.WriteString(block.Text)
		}
	}
	return sb.String()
}

// serveModel answers one model request.
func (s *Server) serveModel(w http.ResponseWriter, r *http.Request, api string) {
	id := s.nextID.Add(1)
	req, bad := parse(r, api, id)
	s.record(Event{Kind: EventStart, ID: id, API: api, Model: req.Model})
	end := Event{Kind: EventEnd, ID: id, API: api, Model: req.Model}
	defer func() { s.record(end) }()

	var reply Reply
	if bad != nil {
		reply = *bad
	} else {
		s.mu.Lock()
		script, def := s.script, s.def
		s.mu.Unlock()
		switch b, ok := Behaviour(req.Model, req); {
		case script != nil:
			reply = script(req)
		case ok:
			reply = b
		default:
			reply = def
		}
	}
	if reply.Status != 0 && reply.Status != http.StatusOK {
		writeError(w, api, req, &reply)
		end.Reason = ReasonStatus
		return
	}
	wr := &writer{w: w, api: api, req: req, reply: &reply, ctx: r.Context(), done: s.done}
	end.Reason = wr.stream()
	end.Chunks = wr.chunks
	if end.Reason == ReasonAbort {
		panic(http.ErrAbortHandler) // breaks the connection without ending the body
	}
}

// wait blocks for d, or until the client leaves or the server closes.
func wait(ctx context.Context, done <-chan struct{}, d time.Duration) string {
	var t <-chan time.Time
	if d >= 0 {
		timer := time.NewTimer(d)
		defer timer.Stop()
		t = timer.C
	}
	select {
	case <-t:
		return ""
	case <-ctx.Done():
		return ReasonClientGone
	case <-done:
		return ReasonClosed
	}
}
