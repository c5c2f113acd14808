package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"path"
	"slices"
	"strings"

	wire "github.com/codingplan/codingplan/shared"
)

// Section is the settings' section name in initializationOptions, didChangeConfiguration and
// workspace/configuration.
const Section = "codingplan"

// Environment variables read at start.
const (
	EnvToken       = "CODINGPLAN_TOKEN"
	EnvBackendURL  = "CODINGPLAN_BACKEND_URL"
	EnvAccountsURL = "CODINGPLAN_ACCOUNTS_URL"
	EnvAPIKey      = "CODINGPLAN_API_KEY"
)

// Trace values.
const (
	TraceOff      = "off"
	TraceMessages = "messages"
	TraceContent  = "content"
)

// Env holds what the environment says, applied where the editor says nothing.
type Env struct {
	Token       wire.Secret
	BackendURL  string
	AccountsURL string
	// APIKey is used when the apiKeyFile setting is empty.
	APIKey wire.Secret
}

// FromEnv reads Env with getenv (os.Getenv in main).
func FromEnv(getenv func(string) string) Env {
	return Env{
		Token:       wire.Secret(strings.TrimSpace(getenv(EnvToken))),
		BackendURL:  strings.TrimSpace(getenv(EnvBackendURL)),
		AccountsURL: strings.TrimSpace(getenv(EnvAccountsURL)),
		APIKey:      wire.Secret(strings.TrimSpace(getenv(EnvAPIKey))),
	}
}

// Apply fills what s leaves empty from the environment: the token, and the backend and
// account service URLs.
func (e Env) Apply(s Settings) Settings {
	if s.Token == "" {
		s.Token = e.Token
	}
	if s.AccountsURL == "" {
		s.AccountsURL = e.AccountsURL
	}
	if s.BackendURL == "" {
		s.BackendURL = e.BackendURL
	}
	if s.BackendURL == "" {
		s.BackendURL = Default().BackendURL
	}
	return s
}

// Load returns the settings the layers give (initializationOptions, then the latest
// configuration from the editor), each laid over the one before with Merge, over Default; then
// the environment fills the token and the backend URL where the layers leave them empty. The
// error, wrapping ErrInvalid, lists every value that could not be used.
func Load(env Env, layers ...json.RawMessage) (Settings, error) {
	s := Default()
	s.BackendURL = ""
	var errs []error
	for _, l := range layers {
		var err error
		if s, err = Merge(s, l); err != nil {
			errs = append(errs, err)
		}
	}
	s = env.Apply(s)
	if Insecure(s.BackendURL) && !s.AllowInsecureBackend {
		errs = append(errs, fmt.Errorf("%w: %w", ErrInvalid, ErrInsecureBackend))
	}
	return s, errors.Join(errs...)
}

// ErrInvalid is wrapped by the error Merge returns for settings it could not use.
var ErrInvalid = errors.New("invalid settings")

// ErrBackendURL is wrapped too when the unusable setting is backendUrl: the caller keeps the
// URL it used before, and never falls back to the default, which would send the token to a
// backend the user did not choose.
var ErrBackendURL = errors.New("backendUrl is not a ws:// or wss:// URL")

// invalidError is Merge's error: the problems, and whether backendUrl is one.
type invalidError struct {
	msg        string
	backendURL bool
}

func (e *invalidError) Error() string { return ErrInvalid.Error() + ": " + e.msg }

func (e *invalidError) Is(target error) bool {
	return target == ErrInvalid || e.backendURL && target == ErrBackendURL
}

// Merge returns base with the settings in raw laid over it. raw is either an object holding the
// "codingplan" section or the section itself; null or an empty object changes nothing. A field
// raw does not mention keeps base's value. A field with a wrong type or an out-of-range value
// keeps base's value too, and the returned error (wrapping ErrInvalid, and ErrBackendURL when
// backendUrl is one) names each such field and the value used instead; the rest of raw still
// applies.
func Merge(base Settings, raw json.RawMessage) (Settings, error) {
	obj, err := SectionOf(raw)
	if err != nil || obj == nil {
		return base, err
	}
	var problems []string
	badURL := false
	out := base
	out.Ignore = append([]string(nil), base.Ignore...)
	out.Enable = maps.Clone(base.Enable)
	for key, val := range obj {
		f, ok := fields[key]
		if !ok {
			continue // unknown keys are left for newer servers
		}
		if bytes.Equal(bytes.TrimSpace(val), []byte("null")) {
			continue
		}
		if err := f(&out, val); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", key, err))
			badURL = badURL || key == "backendUrl"
		}
	}
	if len(problems) == 0 {
		return out, nil
	}
	slices.Sort(problems)
	return out, &invalidError{msg: strings.Join(problems, "; "), backendURL: badURL}
}

// SectionOf returns the codingplan section of raw as its fields: raw["codingplan"] when raw has
// that key, else raw itself when it is an object. It returns nil for null, and an error for
// anything that is not an object.
func SectionOf(raw json.RawMessage) (map[string]json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("%w: settings must be a JSON object", ErrInvalid)
	}
	if sec, ok := obj[Section]; ok {
		return SectionOf(sec)
	}
	return obj, nil
}

// fields sets one field from its JSON value, checking it.
var fields = map[string]func(s *Settings, v json.RawMessage) error{
	"backendUrl": func(s *Settings, v json.RawMessage) error {
		var u string
		if err := decode(v, &u, "a string"); err != nil {
			return err
		}
		if u == "" {
			return nil // empty means the environment's, then the default
		}
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "ws" && p.Scheme != "wss") || p.Host == "" {
			return errors.New("must be a ws:// or wss:// URL; keeping the previous one")
		}
		s.BackendURL = u
		return nil
	},
	"accountsUrl": func(s *Settings, v json.RawMessage) error {
		var u string
		if err := decode(v, &u, "a string"); err != nil {
			return err
		}
		if u == "" {
			s.AccountsURL = ""
			return nil
		}
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return errors.New("must be an http:// or https:// URL; keeping the previous one")
		}
		s.AccountsURL = strings.TrimRight(u, "/")
		return nil
	},
	"apiKeyFile": func(s *Settings, v json.RawMessage) error { return decode(v, &s.APIKeyFile, "a file name") },
	"token": func(s *Settings, v json.RawMessage) error {
		var t string
		if err := decode(v, &t, "a string"); err != nil {
			return err
		}
		s.Token = wire.Secret(strings.TrimSpace(t))
		return nil
	},
	"enable": func(s *Settings, v json.RawMessage) error {
		e, err := parseEnable(v)
		if err == nil {
			s.Enable = e
		}
		return err
	},
	"allowInsecureBackend": func(s *Settings, v json.RawMessage) error {
		return decode(v, &s.AllowInsecureBackend, "true or false")
	},
	"caFile":    func(s *Settings, v json.RawMessage) error { return decode(v, &s.CAFile, "a string") },
	"automatic": func(s *Settings, v json.RawMessage) error { return decode(v, &s.Automatic, "true or false") },
	"model":     func(s *Settings, v json.RawMessage) error { return decode(v, &s.Model, "a string") },
	"debounceMs": func(s *Settings, v json.RawMessage) error {
		return intIn(v, &s.DebounceMS, -1, 2000)
	},
	"multiline": func(s *Settings, v json.RawMessage) error {
		return oneOf(v, &s.Multiline, "auto", "always", "never")
	},
	"suggestions":  func(s *Settings, v json.RawMessage) error { return intIn(v, &s.Suggestions, 1, wire.MaxSuggestions) },
	"maxTokens":    func(s *Settings, v json.RawMessage) error { return intIn(v, &s.MaxTokens, 1, wire.MaxTokensLimit) },
	"prefixChars":  func(s *Settings, v json.RawMessage) error { return intIn(v, &s.PrefixChars, 0, 200_000) },
	"suffixChars":  func(s *Settings, v json.RawMessage) error { return intIn(v, &s.SuffixChars, 0, 200_000) },
	"snippetChars": func(s *Settings, v json.RawMessage) error { return intIn(v, &s.SnippetChars, 0, 200_000) },
	"ignore": func(s *Settings, v json.RawMessage) error {
		var globs []string
		if err := decode(v, &globs, "a list of glob patterns"); err != nil {
			return err
		}
		for _, g := range globs {
			if _, err := path.Match(g, ""); err != nil {
				return fmt.Errorf("pattern %q is malformed; keeping the previous list", g)
			}
		}
		s.Ignore = globs
		return nil
	},
	"trace": func(s *Settings, v json.RawMessage) error {
		return oneOf(v, &s.Trace, TraceOff, TraceMessages, TraceContent)
	},
}

// Keys returns the JSON names of every setting, for tests that check the editors and docs.
func Keys() []string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func decode(v json.RawMessage, dst any, want string) error {
	if err := json.Unmarshal(v, dst); err != nil {
		return fmt.Errorf("must be %s", want)
	}
	return nil
}

func intIn(v json.RawMessage, dst *int, lo, hi int) error {
	var f float64
	if err := json.Unmarshal(v, &f); err != nil {
		return fmt.Errorf("must be a number; using %d", *dst)
	}
	n := int(f)
	if float64(n) != f || n < lo || n > hi {
		return fmt.Errorf("must be a whole number from %d to %d; using %d", lo, hi, *dst)
	}
	*dst = n
	return nil
}

func oneOf(v json.RawMessage, dst *string, allowed ...string) error {
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		for _, a := range allowed {
			if s == a {
				*dst = s
				return nil
			}
		}
	}
	return fmt.Errorf("must be one of %s; using %q", strings.Join(allowed, ", "), *dst)
}
