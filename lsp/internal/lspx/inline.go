package lspx

import "go.lsp.dev/protocol"

// Inline completion (LSP 3.18): textDocument/inlineCompletion.

// MethodInlineCompletion is the request's method.
const MethodInlineCompletion = "textDocument/inlineCompletion"

// InlineCompletionTriggerKind says why inline completion was asked for.
type InlineCompletionTriggerKind int

const (
	// InlineCompletionTriggerInvoked is an explicit request by the user.
	InlineCompletionTriggerInvoked InlineCompletionTriggerKind = 1
	// InlineCompletionTriggerAutomatic is a request made while the user types.
	InlineCompletionTriggerAutomatic InlineCompletionTriggerKind = 2
)

// InlineCompletionParams is textDocument/inlineCompletion's params.
type InlineCompletionParams struct {
	TextDocument protocol.TextDocumentIdentifier `json:"textDocument"`
	Position     protocol.Position               `json:"position"`
	Context      InlineCompletionContext         `json:"context"`
	// WorkDoneToken may be a number or a string.
	WorkDoneToken ProgressToken `json:"workDoneToken,omitempty"`
}

// InlineCompletionContext says how the request was triggered.
type InlineCompletionContext struct {
	TriggerKind InlineCompletionTriggerKind `json:"triggerKind"`
	// SelectedCompletionInfo is the item highlighted in the completion popup, if any: the
	// suggestion should extend it.
	SelectedCompletionInfo *SelectedCompletionInfo `json:"selectedCompletionInfo,omitempty"`
}

// SelectedCompletionInfo is the completion popup's highlighted item.
type SelectedCompletionInfo struct {
	// Range is what the item would replace.
	Range protocol.Range `json:"range"`
	// Text is what it would replace it with.
	Text string `json:"text"`
}

// InlineCompletionList is the request's result.
type InlineCompletionList struct {
	Items []InlineCompletionItem `json:"items"`
}

// InlineCompletionItem is one suggestion. InsertText is a plain string here (LSP also allows
// a snippet StringValue, which this server never sends).
type InlineCompletionItem struct {
	InsertText string            `json:"insertText"`
	FilterText string            `json:"filterText,omitempty"`
	Range      *protocol.Range   `json:"range,omitempty"`
	Command    *protocol.Command `json:"command,omitempty"`
}
