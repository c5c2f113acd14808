package config

import (
	"encoding/json"
	"errors"
	"maps"
)

// AllLanguages is the key of Enable that covers every language id it does not name.
const AllLanguages = "*"

// Enable is the enable setting, as VS Code's github.copilot.enable: true or false for every
// language, or an object keyed by language id whose "*" entry covers the languages it does not
// name, e.g. {"*": true, "plaintext": false}. A missing "*" means on.
type Enable map[string]bool

// For reports whether completions are on for documents of language id lang. forced (the
// enable or toggle command turned completions on for the session) makes the "*" entry on:
// only a language named false stays off.
func (e Enable) For(lang string, forced bool) bool {
	if v, ok := e[lang]; ok {
		return v
	}
	if forced {
		return true
	}
	if v, ok := e[AllLanguages]; ok {
		return v
	}
	return true
}

// Any reports whether some language is on: false only when every entry is false (the setting
// false, or {"*": false}), which turns completions off for the session.
func (e Enable) Any() bool {
	if _, ok := e[AllLanguages]; !ok {
		return true
	}
	for _, v := range e {
		if v {
			return true
		}
	}
	return false
}

// Equal reports whether e and o say the same.
func (e Enable) Equal(o Enable) bool { return maps.Equal(e, o) }

// MarshalJSON writes the setting as a boolean when it names no language, as editors show it.
func (e Enable) MarshalJSON() ([]byte, error) {
	if v, ok := e[AllLanguages]; ok && len(e) == 1 {
		return json.Marshal(v)
	}
	return json.Marshal(map[string]bool(e))
}

// errEnable is the message for an enable value of the wrong shape.
var errEnable = errors.New(`must be true, false or an object of language ids to true or false (e.g. {"*": true, "plaintext": false})`)

// parseEnable reads true, false or an object of booleans.
func parseEnable(v json.RawMessage) (Enable, error) {
	var b bool
	if err := json.Unmarshal(v, &b); err == nil {
		return Enable{AllLanguages: b}, nil
	}
	var m map[string]bool
	if err := json.Unmarshal(v, &m); err != nil || m == nil {
		return nil, errEnable
	}
	return Enable(m), nil
}
