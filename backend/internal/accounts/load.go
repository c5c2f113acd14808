package accounts

import (
	"flag"

	"github.com/codingplan/codingplan/backend/internal/settings"
)

// spec is how Settings are loaded: the same rules as the backend's configuration (package
// settings), with dotted keys for the tables ("rate.token_burst").
var spec = settings.Spec[Settings]{Name: "accounts", EnvPrefix: EnvPrefix, Default: DefaultSettings, Replace: []string{"plans"}}

// Env is the environment variable of a dotted TOML key.
func Env(key string) string { return spec.Env(key) }

// Flag is the flag name of a dotted TOML key.
func Flag(key string) string { return settings.Flag(key) }

// Keys lists every dotted TOML key that env and flags can set.
func Keys() []string { return spec.Keys() }

// Loader fills Settings from a TOML file, CODINGPLAN_ACCOUNTS_* variables and flags, in
// increasing precedence.
type Loader struct{ l *settings.Loader[Settings] }

// Register adds --config and a flag for every scalar setting to fs.
func Register(fs *flag.FlagSet) *Loader { return &Loader{settings.Register(fs, spec)} }

// Load returns the settings: defaults, the file, the environment, the flags; then Validate.
func (l *Loader) Load(getenv func(string) string) (*Settings, error) {
	s, err := l.l.Load(getenv)
	if err != nil {
		return nil, err
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}
