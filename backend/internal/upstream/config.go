package upstream

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	wire "github.com/codingplan/codingplan/shared"
)

// Provider kinds, the values of ModelConfig.Provider.
const (
	KindOpenAIChat        = "openai-chat"        // POST {base_url}/chat/completions
	KindOpenAICompletions = "openai-completions" // POST {base_url}/completions (FIM with suffix or a template)
	KindAnthropic         = "anthropic"          // POST {base_url}/v1/messages
	KindLocal             = "local"              // the embedded n-gram model (local.go)
)

// Config is the model section of the backend's configuration: which models exist, which one
// a request without a model gets, and which models each plan may use. The gateway's config
// package embeds it.
type Config struct {
	// Models lists every model clients may ask for, one [[models]] table each.
	Models []ModelConfig `toml:"models"`
	// DefaultModel is the name or alias used when a request names no model. Empty means the
	// first entry of Models.
	DefaultModel string `toml:"default_model"`
	// PlanModels maps a plan name to the model names (or aliases) it may use. "*" in a list
	// allows every model. A plan missing from the map falls back to the entry for "*"; with
	// neither, the plan may use every model.
	PlanModels map[string][]string `toml:"plan_models"`
	// MaxAttempts bounds the provider calls behind one request: retries and fallbacks, all
	// made before any output reached the client. Default 3.
	MaxAttempts int `toml:"max_attempts"`
	// RetryBackoff is the wait before retrying a model that was unavailable; it doubles at each
	// retry of the same model (with jitter). Fallbacks to another model do not wait.
	// Default 200ms.
	RetryBackoff time.Duration `toml:"retry_backoff"`
	// BatchWindow paces reading a fast stream: once a response has brought 8 KiB, the
	// connection is read at most once per window, so tokens that arrive back to back are
	// read, relayed and written to the client together, with fewer system calls and wake-ups
	// per token. A token waits at most this long; a stream slower than one event per window
	// (every model a person can watch) is not delayed. Default 1ms; negative turns it off.
	BatchWindow time.Duration `toml:"batch_window"`
}

// ModelConfig is one [[models]] table.
type ModelConfig struct {
	// Name is what clients put in a request's model field.
	Name string `toml:"name"`
	// Aliases are other names for the same model.
	Aliases []string `toml:"aliases"`
	// Provider is the kind of API: openai-chat, openai-completions, anthropic or local.
	Provider string `toml:"provider"`
	// BaseURL is the API root, e.g. https://api.openai.com/v1 or https://api.anthropic.com.
	BaseURL string `toml:"base_url"`
	// APIKeyEnv names the environment variable holding the API key (never the key itself).
	// Empty sends no key, for local OpenAI-compatible servers.
	APIKeyEnv string `toml:"api_key_env"`
	// Model is the provider's own model id. Empty means Name.
	Model string `toml:"model"`
	// MaxTokens is the output limit when a request sets none. Default 256.
	MaxTokens int `toml:"max_tokens"`
	// Stop lists stop sequences sent with every request, after the request's own.
	Stop []string `toml:"stop"`
	// FIMTemplate, for openai-completions, builds the prompt from {prefix} and {suffix}, e.g.
	// "<fim_prefix>{prefix}<fim_suffix>{suffix}<fim_middle>". Empty sends the text before the
	// cursor as prompt and the text after it as the API's suffix parameter.
	FIMTemplate string `toml:"fim_template"`
	// Fallback lists models (names or aliases) tried in order when this one fails before its
	// first token.
	Fallback []string `toml:"fallback"`
	// Timeouts bound each call to this model.
	Timeouts Timeouts `toml:"timeouts"`
	// Options holds settings of one provider kind (the local model's, for instance).
	Options map[string]string `toml:"options"`
	// Ops are the request ops the model serves ("completion", "edit"), as hello frames tell
	// clients; a request for another op gets bad_request. Empty means the kind's: the local
	// model completes only, the others do both.
	Ops []string `toml:"ops"`
}

// Timeouts bound one call to a model. Zero means the default.
type Timeouts struct {
	// Connect bounds the TCP connect and the TLS handshake. Default 5s.
	Connect time.Duration `toml:"connect"`
	// FirstToken bounds the time from sending the request to the first piece of output.
	// Passing it is "unavailable": nothing reached the client, so a fallback may run.
	// Default 20s.
	FirstToken time.Duration `toml:"first_token"`
	// Idle bounds the gap between two events of the stream once output started. Default 30s.
	Idle time.Duration `toml:"idle"`
	// Total bounds the whole call. Default 5m.
	Total time.Duration `toml:"total"`
}

// Defaults used for zero fields.
const (
	DefaultMaxTokens    = 256
	DefaultMaxAttempts  = 3
	DefaultRetryBackoff = 200 * time.Millisecond
	DefaultBatchWindow  = time.Millisecond
)

// DefaultTimeouts are the timeouts of a model that sets none.
var DefaultTimeouts = Timeouts{Connect: 5 * time.Second, FirstToken: 20 * time.Second, Idle: 30 * time.Second, Total: 5 * time.Minute}

// withDefaults fills zero fields.
func (t Timeouts) withDefaults() Timeouts {
	if t.Connect <= 0 {
		t.Connect = DefaultTimeouts.Connect
	}
	if t.FirstToken <= 0 {
		t.FirstToken = DefaultTimeouts.FirstToken
	}
	if t.Idle <= 0 {
		t.Idle = DefaultTimeouts.Idle
	}
	if t.Total <= 0 {
		t.Total = DefaultTimeouts.Total
	}
	return t
}

// withDefaults fills zero fields of a model.
func (m ModelConfig) withDefaults() ModelConfig {
	if m.Model == "" {
		m.Model = m.Name
	}
	if m.MaxTokens <= 0 {
		m.MaxTokens = DefaultMaxTokens
	}
	m.Timeouts = m.Timeouts.withDefaults()
	m.BaseURL = strings.TrimRight(m.BaseURL, "/")
	if len(m.Ops) == 0 {
		m.Ops = defaultOps(m.Provider)
	}
	return m
}

// defaultOps are the ops a model of a provider kind serves when its configuration names none.
func defaultOps(kind string) []string {
	if kind == KindLocal {
		return []string{wire.OpCompletion} // the n-gram model only continues code
	}
	return []string{wire.OpCompletion, wire.OpEdit}
}

// validate checks one model's own fields (not its references to other models).
func (m *ModelConfig) validate() error {
	var errs []error
	if m.Name == "" {
		errs = append(errs, errors.New("a model has no name"))
	}
	switch m.Provider {
	case KindOpenAIChat, KindOpenAICompletions, KindAnthropic:
		u, err := url.Parse(m.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("base_url must be an http or https URL"))
		}
	case KindLocal:
	case "":
		errs = append(errs, errors.New("provider is missing"))
	}
	for _, op := range m.Ops {
		switch {
		case op != wire.OpCompletion && op != wire.OpEdit:
			errs = append(errs, fmt.Errorf("ops: unknown op %q (completion, edit)", op))
		case op == wire.OpEdit && m.Provider == KindLocal:
			errs = append(errs, errors.New("ops: the local model cannot serve edit"))
		}
	}
	if t := m.FIMTemplate; t != "" && !strings.Contains(t, "{prefix}") {
		errs = append(errs, errors.New("fim_template has no {prefix}"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("model %q: %w", m.Name, err)
	}
	return nil
}
