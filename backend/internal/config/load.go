package config

import (
	"flag"

	"github.com/codingplan/codingplan/backend/internal/settings"
)

// EnvPrefix starts every environment variable of the backend.
const EnvPrefix = "CODINGPLAN_"

// EnvConfigFile names the config file when --config is not given.
const EnvConfigFile = EnvPrefix + "CONFIG"

// spec is how a Config is loaded (package settings). A file that names any plan offers
// exactly those plans: a token for a built-in plan the operator never offered is refused.
var spec = settings.Spec[Config]{Name: "config", EnvPrefix: EnvPrefix, Default: Default, Replace: []string{"plans"}}

// Env is the environment variable of a TOML key.
func Env(key string) string { return spec.Env(key) }

// Flag is the flag name of a TOML key.
func Flag(key string) string { return settings.Flag(key) }

// Loader fills a Config from a TOML file, the environment and flags. Register its flags on a
// FlagSet, parse the command line, then call Load.
type Loader struct{ l *settings.Loader[Config] }

// Register adds --config and a flag for every scalar setting to fs.
func Register(fs *flag.FlagSet) *Loader { return &Loader{settings.Register(fs, spec)} }

// Load returns the configuration: defaults, then the file (from --config or CODINGPLAN_CONFIG),
// then CODINGPLAN_* variables, then flags; then the model defaults, then Validate.
func (l *Loader) Load(getenv func(string) string) (*Config, error) {
	c, err := l.l.Load(getenv)
	if err != nil {
		return nil, err
	}
	c.applyModelDefaults(getenv)
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}
