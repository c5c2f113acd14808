// Package lspx declares the LSP 3.16-3.18 shapes that go.lsp.dev/protocol v0.12.0 (LSP 3.15)
// lacks or gets wrong for this server, and codingplan's own LSP extensions. Each is declared
// here once; everything else uses go.lsp.dev/protocol.
//
// The initialize shapes are slim on purpose: a client's capabilities are decoded only as far as
// the server uses them, so a client that sends a field in an unexpected shape is not refused.
package lspx

import (
	"encoding/json"

	"go.lsp.dev/protocol"
)

// Error codes LSP adds to JSON-RPC's (jsonrpc2 v0.10.0 has only ServerNotInitialized).
const (
	// RequestCancelled answers a request the client cancelled with $/cancelRequest.
	RequestCancelled = -32800
	// ContentModified answers a request whose result the document's changes made stale.
	ContentModified = -32801
	// ServerCancelled answers a request the server gave up on.
	ServerCancelled = -32802
	// RequestFailed is a request that was valid but failed.
	RequestFailed = -32803
)

// Position encoding kinds (LSP 3.17).
const (
	PositionEncodingUTF8  = "utf-8"
	PositionEncodingUTF16 = "utf-16"
	PositionEncodingUTF32 = "utf-32"
)

// InitializeParams is the part of initialize's params the server reads.
type InitializeParams struct {
	ProcessID             *int               `json:"processId"`
	ClientInfo            *ClientInfo        `json:"clientInfo,omitempty"`
	RootURI               string             `json:"rootUri,omitempty"`
	RootPath              string             `json:"rootPath,omitempty"`
	InitializationOptions json.RawMessage    `json:"initializationOptions,omitempty"`
	Capabilities          ClientCapabilities `json:"capabilities"`
	WorkspaceFolders      []WorkspaceFolder  `json:"workspaceFolders,omitempty"`
}

// ClientInfo names the client.
type ClientInfo struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
}

// WorkspaceFolder is a root folder of the workspace.
type WorkspaceFolder = protocol.WorkspaceFolder

// ClientCapabilities is the part of the client's capabilities the server reads.
type ClientCapabilities struct {
	General      *GeneralClientCapabilities      `json:"general,omitempty"`
	Workspace    *WorkspaceClientCapabilities    `json:"workspace,omitempty"`
	TextDocument *TextDocumentClientCapabilities `json:"textDocument,omitempty"`
	Window       *WindowClientCapabilities       `json:"window,omitempty"`
}

// GeneralClientCapabilities holds positionEncodings (LSP 3.17).
type GeneralClientCapabilities struct {
	// PositionEncodings are the encodings the client supports, most preferred first.
	PositionEncodings []string `json:"positionEncodings,omitempty"`
}

// WorkspaceClientCapabilities are the workspace features the server uses.
type WorkspaceClientCapabilities struct {
	ApplyEdit        bool `json:"applyEdit,omitempty"`
	Configuration    bool `json:"configuration,omitempty"`
	WorkspaceFolders bool `json:"workspaceFolders,omitempty"`
	WorkspaceEdit    *struct {
		DocumentChanges bool `json:"documentChanges,omitempty"`
	} `json:"workspaceEdit,omitempty"`
}

// TextDocumentClientCapabilities are the document features the server uses.
type TextDocumentClientCapabilities struct {
	// InlineCompletion is present when the client supports textDocument/inlineCompletion.
	InlineCompletion *struct {
		DynamicRegistration bool `json:"dynamicRegistration,omitempty"`
	} `json:"inlineCompletion,omitempty"`
}

// WindowClientCapabilities are the window features the server uses.
type WindowClientCapabilities struct {
	WorkDoneProgress bool `json:"workDoneProgress,omitempty"`
}

// InitializeResult is initialize's result.
type InitializeResult struct {
	Capabilities ServerCapabilities `json:"capabilities"`
	ServerInfo   *ServerInfo        `json:"serverInfo,omitempty"`
}

// ServerInfo names the server.
type ServerInfo struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
}

// ServerCapabilities are the capabilities this server advertises.
type ServerCapabilities struct {
	PositionEncoding         string                   `json:"positionEncoding,omitempty"`
	TextDocumentSync         TextDocumentSyncOptions  `json:"textDocumentSync"`
	InlineCompletionProvider *InlineCompletionOptions `json:"inlineCompletionProvider,omitempty"`
	CompletionProvider       *CompletionOptions       `json:"completionProvider,omitempty"`
	CodeActionProvider       *CodeActionOptions       `json:"codeActionProvider,omitempty"`
	ExecuteCommandProvider   *ExecuteCommandOptions   `json:"executeCommandProvider,omitempty"`
	Workspace                *ServerWorkspace         `json:"workspace,omitempty"`
}

// TextDocumentSyncOptions says how documents are synced.
type TextDocumentSyncOptions struct {
	OpenClose bool                          `json:"openClose"`
	Change    protocol.TextDocumentSyncKind `json:"change"`
}

// InlineCompletionOptions (LSP 3.18).
type InlineCompletionOptions struct {
	WorkDoneProgress bool `json:"workDoneProgress,omitempty"`
}

// CompletionOptions for textDocument/completion.
type CompletionOptions struct {
	TriggerCharacters []string `json:"triggerCharacters,omitempty"`
	ResolveProvider   bool     `json:"resolveProvider"`
}

// CodeActionOptions for textDocument/codeAction.
type CodeActionOptions struct {
	CodeActionKinds []string `json:"codeActionKinds,omitempty"`
	ResolveProvider bool     `json:"resolveProvider"`
}

// ExecuteCommandOptions lists the commands workspace/executeCommand runs.
type ExecuteCommandOptions struct {
	Commands []string `json:"commands"`
}

// ServerWorkspace is the server's workspace capabilities.
type ServerWorkspace struct {
	WorkspaceFolders *WorkspaceFoldersServerCapabilities `json:"workspaceFolders,omitempty"`
}

// WorkspaceFoldersServerCapabilities says the server handles several roots.
type WorkspaceFoldersServerCapabilities struct {
	Supported           bool `json:"supported"`
	ChangeNotifications bool `json:"changeNotifications"`
}

// ProgressToken is a work-done progress token, a JSON number or string, kept as it came.
type ProgressToken = json.RawMessage

// WorkDoneProgressCreateParams is window/workDoneProgress/create's params. protocol's has a
// token type whose JSON form depends on addressability.
type WorkDoneProgressCreateParams struct {
	Token ProgressToken `json:"token"`
}

// WorkDoneProgressCancelParams is window/workDoneProgress/cancel's params.
type WorkDoneProgressCancelParams struct {
	Token ProgressToken `json:"token"`
}

// ProgressParams is $/progress's params; Value is a protocol.WorkDoneProgressBegin, Report or End.
type ProgressParams struct {
	Token ProgressToken `json:"token"`
	Value any           `json:"value"`
}

// CodeAction is a code action with data (LSP 3.16), which protocol's lacks.
type CodeAction struct {
	Title       string                      `json:"title"`
	Kind        protocol.CodeActionKind     `json:"kind,omitempty"`
	Diagnostics []protocol.Diagnostic       `json:"diagnostics,omitempty"`
	IsPreferred bool                        `json:"isPreferred,omitempty"`
	Disabled    *protocol.CodeActionDisable `json:"disabled,omitempty"`
	Edit        *protocol.WorkspaceEdit     `json:"edit,omitempty"`
	Command     *protocol.Command           `json:"command,omitempty"`
	Data        json.RawMessage             `json:"data,omitempty"`
}

// ApplyWorkspaceEditResult is workspace/applyEdit's result.
type ApplyWorkspaceEditResult struct {
	Applied       bool   `json:"applied"`
	FailureReason string `json:"failureReason,omitempty"`
}
