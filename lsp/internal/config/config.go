// Package config holds the language server's settings: their defaults, and how they are read
// from initializationOptions, workspace/didChangeConfiguration and the environment.
//
// Settings is the one place a setting is declared. The editors' settings (the VS Code
// extension's contributes.configuration, the Neovim plugin's defaults) and docs/configuration.md
// are checked against it by tests.
package config

import (
	wire "github.com/codingplan/codingplan/shared"
)

// Settings are the language server's settings, under the "codingplan" section.
type Settings struct {
	// BackendURL is the backend's websocket endpoint.
	BackendURL string `json:"backendUrl"`
	// Token is the bearer token (a JWT) for the backend. Empty means the CODINGPLAN_TOKEN
	// environment variable, then signed out.
	Token wire.Secret `json:"token"`
	// AccountsURL is the account service (codingplan-accounts) that codingplan.signIn's
	// device sign-in, refreshes and API keys go to. Empty means CODINGPLAN_ACCOUNTS_URL, then
	// one derived from BackendURL (see AccountsURL).
	AccountsURL string `json:"accountsUrl"`
	// APIKeyFile names a file holding an API key, for machines without a browser: it is
	// exchanged for access tokens. Empty means CODINGPLAN_API_KEY, then none.
	APIKeyFile string `json:"apiKeyFile"`
	// AllowInsecureBackend lets a ws:// (unencrypted) BackendURL reach a host other than
	// loopback. Off, such a URL is refused: the token and code must travel over TLS.
	AllowInsecureBackend bool `json:"allowInsecureBackend"`
	// CAFile is a PEM file of CA certificates trusted for the backend's TLS certificate, besides
	// the system's (which SSL_CERT_FILE and SSL_CERT_DIR replace).
	CAFile string `json:"caFile"`
	// Enable turns AI completions on or off, for every language or per language id. Code
	// actions stay available.
	Enable Enable `json:"enable"`
	// Automatic shows suggestions while typing; off, only an explicitly invoked inline
	// completion (a key) asks the backend.
	Automatic bool `json:"automatic"`
	// Model asks for a model by name or alias; empty means the backend's default.
	Model string `json:"model"`
	// DebounceMS is how long to wait after a keystroke before asking the backend, in
	// milliseconds. -1 means automatic: none for clients that debounce themselves (VS Code,
	// Neovim), 75 ms for others.
	DebounceMS int `json:"debounceMs"`
	// Multiline chooses multi-line suggestions: "auto" (from the cursor's context), "always"
	// or "never".
	Multiline string `json:"multiline"`
	// Suggestions is how many distinct suggestions an explicitly invoked inline completion (or
	// the editor's next/previous suggestion keys) returns, to cycle through; automatic ones
	// return one. 1 to 3.
	Suggestions int `json:"suggestions"`
	// MaxTokens caps the length of a completion.
	MaxTokens int `json:"maxTokens"`
	// PrefixChars and SuffixChars bound the text sent before and after the cursor.
	PrefixChars int `json:"prefixChars"`
	SuffixChars int `json:"suffixChars"`
	// SnippetChars bounds the excerpts of other open documents sent as context; 0 sends none.
	SnippetChars int `json:"snippetChars"`
	// Ignore lists glob patterns (matched against the file name and the workspace-relative
	// path) of files that are never sent to the backend.
	Ignore []string `json:"ignore"`
	// Trace logs the protocol to the editor's log: "off", "messages" (text fields redacted)
	// or "content" (everything, for debugging on your own machine).
	Trace string `json:"trace"`
}

// Default returns the settings used where nothing else is said.
func Default() Settings {
	return Settings{
		BackendURL:   "ws://127.0.0.1:8787" + wire.Path,
		Enable:       Enable{AllLanguages: true},
		Automatic:    true,
		DebounceMS:   -1,
		Multiline:    "auto",
		Suggestions:  3,
		MaxTokens:    256,
		PrefixChars:  8000,
		SuffixChars:  2000,
		SnippetChars: 3000,
		Ignore:       []string{".env", ".env.*", "*.pem", "*.key", "id_*", "*.p12", "*.pfx", ".netrc", ".npmrc", "credentials*"},
		Trace:        "off",
	}
}
