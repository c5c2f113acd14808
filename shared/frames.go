package wire

// ClientFrame is any frame a client sends. Type says which fields apply:
//
//	request: ID, Op, Model, MaxTokens, Stop, and Completion (with its N) or Edit
//	cancel:  ID
//	auth:    Token
//	ping:    ID (optional, echoed in the pong)
type ClientFrame struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`

	Op         string      `json:"op,omitempty"`
	Model      string      `json:"model,omitempty"`
	MaxTokens  int         `json:"max_tokens,omitempty"`
	Stop       []Text      `json:"stop,omitempty"`
	Completion *Completion `json:"completion,omitempty"`
	Edit       *Edit       `json:"edit,omitempty"`

	Token Secret `json:"token,omitempty"`
}

// Completion is the text around a cursor.
type Completion struct {
	Prefix   Text   `json:"prefix"`
	Suffix   Text   `json:"suffix,omitempty"`
	Language string `json:"language,omitempty"` // an LSP language id: "go", "python", ...
	Path     string `json:"path,omitempty"`     // relative to the workspace root, for the prompt only
	// Snippets are excerpts of other files the user has open, most relevant first.
	Snippets []Snippet `json:"snippets,omitempty"`
	// Multiline asks for more than the rest of the current line.
	Multiline bool `json:"multiline,omitempty"`
	// N asks for that many suggestions (see Suggestions): 0 or 1 for one, the default.
	N int `json:"n,omitempty"`
}

// Suggestions is how many suggestions the server makes for c: N, with 0 meaning 1 and
// values above MaxSuggestions clamped to it.
func (c *Completion) Suggestions() int {
	return min(max(c.N, 1), MaxSuggestions)
}

// Snippet is an excerpt of another file, given as context.
type Snippet struct {
	Path string `json:"path"`
	Text Text   `json:"text"`
}

// Edit asks for a selection rewritten following an instruction. The model's output replaces
// the selection, except for explanations, whose output is prose for the user.
type Edit struct {
	Instruction Text   `json:"instruction"`
	Selection   Text   `json:"selection"`
	Prefix      Text   `json:"prefix,omitempty"` // text before the selection, trimmed by the client
	Suffix      Text   `json:"suffix,omitempty"` // text after the selection, trimmed by the client
	Language    string `json:"language,omitempty"`
	Path        string `json:"path,omitempty"`
	// Diagnostics are the editor's messages about the selection, for fixes.
	Diagnostics []Text `json:"diagnostics,omitempty"`
}

// ServerFrame is any frame a server sends. Type says which fields apply:
//
//	hello:  Protocol, Server, Limits, Plan, ExpiresAt, Models (also sent again after an accepted
//	        auth frame, a plan change, and when a model's state changes)
//	queued: ID, Position, Plan
//	delta:  ID, Index, Text
//	done:   ID, Index, FinishReason, Usage (on the stream's last done only)
//	error:  Code, Message, and ID when it ends one stream; RetryAfterMS and Plan where they apply
//	goaway: Reason, RetryAfterMS
//	pong:   ID
type ServerFrame struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`
	// Index is the suggestion a delta or done belongs to, 0 to n-1 (see Completion.N);
	// omitted for 0, so that streams of one suggestion never carry it.
	Index int `json:"index,omitempty"`

	Protocol  int     `json:"protocol,omitempty"`
	Server    string  `json:"server,omitempty"`
	Limits    *Limits `json:"limits,omitempty"`
	Plan      *Plan   `json:"plan,omitempty"`
	ExpiresAt int64   `json:"expires_at,omitempty"` // the token's exp, Unix seconds
	// Models are the models the plan may use and what each serves; absent from servers that
	// predate it (then a client assumes every op is served).
	Models []Model `json:"models,omitempty"`

	Position int `json:"position,omitempty"` // 1 = next in line

	Text Text `json:"text,omitempty"`

	FinishReason string `json:"finish_reason,omitempty"`
	Usage        *Usage `json:"usage,omitempty"`

	Code         Code   `json:"code,omitempty"`
	Message      string `json:"message,omitempty"`
	RetryAfterMS int64  `json:"retry_after_ms,omitempty"`

	Reason string `json:"reason,omitempty"`
}

// Limits are the connection's limits.
type Limits struct {
	MaxFrameBytes int `json:"max_frame_bytes"`
	MaxInFlight   int `json:"max_in_flight"`
}

// Plan is the caller's subscription and how much of its concurrency is in use.
type Plan struct {
	Name        string `json:"name"`
	Concurrency int    `json:"concurrency"` // model streams the plan may run at once, across all connections
	InUse       int    `json:"in_use"`      // streams running now, when known
}

// Model is one model a connection's plan may use, in a hello frame.
type Model struct {
	Name    string   `json:"name"`
	Aliases []string `json:"aliases,omitempty"`
	// Ops are the request ops the model serves: OpCompletion, OpEdit.
	Ops []string `json:"ops"`
	// Default marks the model a request without a model gets.
	Default bool `json:"default,omitempty"`
	// State is ModelLoading while the model cannot serve yet, ModelFailed when it failed to
	// load; absent when it serves.
	State string `json:"state,omitempty"`
}

// Model states (Model.State). A server sends a new hello when a model's state changes.
const (
	ModelLoading = "loading"
	ModelFailed  = "failed"
)

// Serves reports whether m serves op.
func (m *Model) Serves(op string) bool {
	for _, o := range m.Ops {
		if o == op {
			return true
		}
	}
	return false
}

// Usage counts tokens of one stream, all of its suggestions together.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
}
