// Package wire is codingplan's websocket protocol, version 1: the frames a client (the local language
// server or any other IDE plugin) and the backend exchange, their error codes and limits.
//
// It is the only package that lsp/ and backend/ both import, and it uses the standard library only.
// docs/protocol.md describes the same protocol for people writing clients; golden frames in
// testdata/ keep the two in step.
//
// Every frame is one JSON object in one websocket text message. Its "type" says what it is; frames
// that belong to a stream carry the client-chosen "id" of that stream.
package wire

import (
	"fmt"
	"log/slog"
)

// Version is the protocol version this package speaks. It is also the number in Subprotocol and
// in the endpoint path.
const Version = 1

const (
	// Path is the websocket endpoint.
	Path = "/v1/ws"
	// Subprotocol is the websocket subprotocol a client offers. A client that cannot set an
	// Authorization header offers the token as a second subprotocol, TokenSubprotocolPrefix+token.
	Subprotocol = "codingplan.v1"
	// TokenSubprotocolPrefix starts the subprotocol that carries a bearer token.
	TokenSubprotocolPrefix = "codingplan.token."
)

// Limits every server enforces. A server may state lower ones in its hello frame; clients obey
// the hello frame.
const (
	// MaxFrameBytes is the largest client frame a server accepts. Larger frames get too_large
	// and the connection is closed, since the rest of the message cannot be skipped safely.
	MaxFrameBytes = 1 << 20
	// MaxInFlight is how many streams one connection may have open at once.
	MaxInFlight = 16
	// MaxIDBytes bounds a stream id.
	MaxIDBytes = 64
	// MaxStopSequences bounds Request.Stop.
	MaxStopSequences = 8
	// MaxTokensLimit bounds Request.MaxTokens.
	MaxTokensLimit = 8192
	// MaxSuggestions bounds the suggestions of one completion request: a larger
	// Completion.N is served as this many (see Completion.Suggestions).
	MaxSuggestions = 3
)

// Frame types a client sends.
const (
	TypeRequest = "request"
	TypeCancel  = "cancel"
	TypeAuth    = "auth"
	TypePing    = "ping"
)

// Frame types a server sends. Clients ignore server frame types they do not know, so later
// minor revisions can add frames.
const (
	TypeHello  = "hello"
	TypeQueued = "queued"
	TypeDelta  = "delta"
	TypeDone   = "done"
	TypeError  = "error"
	TypeGoaway = "goaway"
	TypePong   = "pong"
)

// Operations a request asks for.
const (
	// OpCompletion continues code at a cursor: Completion holds the text around it.
	OpCompletion = "completion"
	// OpEdit rewrites a selection following an instruction: Edit holds both.
	OpEdit = "edit"
)

// Finish reasons in a done frame.
const (
	FinishStop   = "stop"   // the model ended, or hit a stop sequence
	FinishLength = "length" // max_tokens reached
)

// Text is user content: code, prompts, instructions, model output. It travels in frames as a
// JSON string, but prints as [redacted] through fmt, slog and %#v so it cannot reach a log by
// accident.
type Text string

const redacted = "[redacted]"

// String implements fmt.Stringer.
func (Text) String() string { return redacted }

// GoString implements fmt.GoStringer.
func (Text) GoString() string { return redacted }

// Format implements fmt.Formatter for every verb.
func (Text) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue implements slog.LogValuer.
func (Text) LogValue() slog.Value { return slog.StringValue(redacted) }

// Secret is a credential (a token). It prints like Text.
type Secret string

// String implements fmt.Stringer.
func (Secret) String() string { return redacted }

// GoString implements fmt.GoStringer.
func (Secret) GoString() string { return redacted }

// Format implements fmt.Formatter for every verb.
func (Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue implements slog.LogValuer.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }
