// Package lspx declares codingplan's own LSP extensions: the status notification, the
// commands and their arguments, the Copilot-shaped telemetry notifications and the code action
// kinds. Every standard LSP type comes from go.lsp.dev/protocol. The VS Code extension and the
// Neovim plugin mirror these declarations.
package lspx

import (
	"github.com/go-json-experiment/json/jsontext"
	"go.lsp.dev/jsonrpc2"
	"go.lsp.dev/protocol"
)

// Error codes LSP adds to JSON-RPC's, as jsonrpc2 codes.
const (
	// RequestCancelled answers a request the client cancelled with $/cancelRequest.
	RequestCancelled = jsonrpc2.Code(protocol.LSPErrorCodesRequestCancelled)
	// ServerCancelled answers a request the server gave up on.
	ServerCancelled = jsonrpc2.Code(protocol.LSPErrorCodesServerCancelled)
	// RequestFailed is a request that was valid but failed.
	RequestFailed = jsonrpc2.Code(protocol.LSPErrorCodesRequestFailed)
)

// MethodStatus is the server-to-client notification carrying a Status.
const MethodStatus = "codingplan/status"

// Status states.
const (
	StateSignedOut     = "signedOut"
	StateConnecting    = "connecting"
	StateLoading       = "loading" // connected, but the model still loads on the backend
	StateReady         = "ready"
	StateBusy          = "busy"
	StateRateLimited   = "rateLimited"
	StateQuotaExceeded = "quotaExceeded"
	StateDisabled      = "disabled"
	StateError         = "error"
)

// Status reasons: why a state that needs the user came about (Status.Reason), for editors to
// tell the user once per state and reason and to offer the right action.
const (
	ReasonSignedOut            = "signedOut"            // no token: sign in
	ReasonTokenRejected        = "tokenRejected"        // the backend refused or revoked the token: sign in again
	ReasonTokenExpired         = "tokenExpired"         // the token expired: sign in again
	ReasonSubscriptionInactive = "subscriptionInactive" // the plan is not (or no longer) offered
	ReasonUnreachable          = "unreachable"          // the backend cannot be reached; retryAfterMs says when the next try is
	ReasonNoBackendURL         = "noBackendUrl"         // no valid backendUrl setting
	ReasonRateLimited          = "rateLimited"          // every slot of the plan is busy, or the backend refused the connection for its connection limits (429); retryAfterMs
	ReasonBackendBusy          = "backendBusy"          // the backend cannot start streams for now; retryAfterMs
	ReasonQuotaExceeded        = "quotaExceeded"        // the plan does not allow the request
	ReasonModelLoading         = "modelLoading"         // the model still loads on the backend
	ReasonModelFailed          = "modelFailed"          // the model failed to load on the backend
	ReasonProtocol             = "protocol"             // the backend speaks another protocol, or none
)

// Status is what a status bar shows: the codingplan/status notification's params and the
// codingplan.status command's result.
type Status struct {
	State   string `json:"state"`
	Message string `json:"message"`
	// Reason is one of the Reason* values when the state needs the user, else absent.
	Reason       string      `json:"reason,omitzero"`
	RetryAfterMS int64       `json:"retryAfterMs,omitzero"`
	Plan         *PlanStatus `json:"plan,omitzero"`
	Enabled      bool        `json:"enabled"`
	// Model is the model requests go to, as the backend names it; absent until the backend
	// said which models the plan has.
	Model string `json:"model,omitzero"`
	// Unavailable says which features are off because the model cannot serve them, and why
	// (e.g. no code actions: the model serves completions only); absent when nothing is off.
	Unavailable string `json:"unavailable,omitzero"`
}

// PlanStatus is the caller's plan as the backend last reported it.
type PlanStatus struct {
	Name        string `json:"name"`
	Concurrency int    `json:"concurrency"`
	InUse       int    `json:"inUse"`
}

// Commands (workspace/executeCommand).
const (
	CommandStatus           = "codingplan.status"
	CommandSignIn           = "codingplan.signIn"
	CommandSignOut          = "codingplan.signOut"
	CommandRetry            = "codingplan.retry" // connect now instead of after the backoff; returns the Status
	CommandEnable           = "codingplan.enable"
	CommandDisable          = "codingplan.disable"
	CommandToggle           = "codingplan.toggle"
	CommandAcceptCompletion = "codingplan.acceptCompletion"
	CommandRewrite          = "codingplan.rewrite"
	CommandRunAction        = "codingplan.runAction"
)

// Commands lists every command, for executeCommandProvider.
var Commands = []string{
	CommandStatus, CommandSignIn, CommandSignOut, CommandRetry, CommandEnable, CommandDisable, CommandToggle,
	CommandAcceptCompletion, CommandRewrite, CommandRunAction,
}

// EnabledResult is the result of codingplan.enable, .disable and .toggle.
type EnabledResult struct {
	Enabled bool `json:"enabled"`
}

// AcceptCompletionArgs is codingplan.acceptCompletion's argument, carried by every suggestion.
type AcceptCompletionArgs struct {
	URI string `json:"uri"`
	ID  string `json:"id"`
}

// AppendJSON appends a's JSON, as protocol.Marshal writes it, without reflection: every
// suggestion carries one.
func (a AcceptCompletionArgs) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"uri":`...)
	dst, _ = jsontext.AppendQuote(dst, a.URI)
	dst = append(dst, `,"id":`...)
	dst, _ = jsontext.AppendQuote(dst, a.ID)
	return append(dst, '}')
}

// RewriteArgs is codingplan.rewrite's argument. Version, when set, is the document version
// the range refers to: the command refuses to run on a later one.
type RewriteArgs struct {
	URI         string         `json:"uri"`
	Range       protocol.Range `json:"range"`
	Instruction string         `json:"instruction"`
	Version     *int32         `json:"version,omitzero"`
}

// RunActionArgs is codingplan.runAction's argument: the code action of a kind, which every
// offered code action carries as its command.
type RunActionArgs struct {
	URI   string         `json:"uri"`
	Range protocol.Range `json:"range"`
	Kind  string         `json:"kind"`
	// Version, when set, is the document version the range refers to.
	Version *int32 `json:"version,omitzero"`
	// Diagnostics are the fix's diagnostics, one line each.
	Diagnostics []string `json:"diagnostics,omitzero"`
	// Instruction is used by the rewrite kind only.
	Instruction string `json:"instruction,omitzero"`
}

// Client-to-server notifications in the shapes GitHub Copilot's language server uses.
const (
	MethodDidShowCompletion            = "textDocument/didShowCompletion"
	MethodDidPartiallyAcceptCompletion = "textDocument/didPartiallyAcceptCompletion"
)

// DidShowCompletionParams says the client showed a suggestion.
type DidShowCompletionParams struct {
	Item protocol.InlineCompletionItem `json:"item"`
}

// DidPartiallyAcceptCompletionParams says the user accepted part of a suggestion.
type DidPartiallyAcceptCompletionParams struct {
	Item           protocol.InlineCompletionItem `json:"item"`
	AcceptedLength int                           `json:"acceptedLength"`
}

// Code action kinds.
const (
	KindFix      = "quickfix.codingplan.fix"
	KindDocument = "refactor.rewrite.codingplan.document"
	KindExplain  = "refactor.codingplan.explain"
	KindTests    = "refactor.codingplan.tests"
	KindSimplify = "refactor.rewrite.codingplan.simplify"
	KindRewrite  = "refactor.rewrite.codingplan.rewrite"
)

// ActionKinds lists every code action kind, for codeActionProvider.
var ActionKinds = []string{KindFix, KindDocument, KindExplain, KindTests, KindSimplify, KindRewrite}

// MethodShowMarkdown is the server-to-client notification carrying a ShowMarkdownParams: a
// whole answer (Explain's) for the editor to open as a Markdown document. LSP has no
// read-only virtual document, so the editor plugins show it themselves; a client says it can
// with the experimental client capability {"codingplan": {"showMarkdown": true}}, and one that
// does not gets the text through window/showMessage.
const MethodShowMarkdown = "codingplan/showMarkdown"

// ShowMarkdownParams is a Markdown text for the user to read.
type ShowMarkdownParams struct {
	Title    string `json:"title"`
	Markdown string `json:"markdown"`
}

// ExperimentalCaps is the client's experimental capabilities under "codingplan".
type ExperimentalCaps struct {
	ShowMarkdown bool `json:"showMarkdown,omitzero"`
}

// AnnotationPreview is the change annotation every code action edit carries, with
// needsConfirmation, where the client supports change annotations: VS Code shows its refactor
// preview, the Neovim plugin a diff to accept or reject.
const AnnotationPreview = "codingplan.preview"

// Sign-in (docs/editors.md, "Signing in"). codingplan.signIn without an argument runs the device
// sign-in: the server asks the editor with window/showMessageRequest to show the code, with one
// DeviceAction, ActionCopyAndOpen, that carries the code and the page. An editor plugin that
// copies the code and opens the page itself answers with that action and Opened set; otherwise
// the server opens the page with window/showDocument (external) when the client supports it.
const (
	ActionCopyAndOpen = "Copy code and open"
	// ActionSignIn is offered once when a sign-in or token stops working.
	ActionSignIn = "Sign in"
)

// DeviceAction is a window/showMessageRequest action of the sign-in messages, with the
// additional properties LSP allows on a MessageActionItem.
type DeviceAction struct {
	Title string `json:"title"`
	// UserCode and URI: the code to enter and the page that takes it (with the code filled in).
	UserCode string `json:"userCode,omitzero"`
	URI      string `json:"uri,omitzero"`
	// Opened, in the answer: the editor copied the code and opened the page itself.
	Opened bool `json:"opened,omitzero"`
}

// ShowMessageRequestParams is window/showMessageRequest's params with DeviceActions.
type ShowMessageRequestParams struct {
	Type    protocol.MessageType `json:"type"`
	Message string               `json:"message"`
	Actions []DeviceAction       `json:"actions,omitzero"`
}
