package config

import (
	"errors"
	"flag"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// EnvPrefix starts every environment variable of the backend.
const EnvPrefix = "CODINGPLAN_"

// EnvConfigFile names the config file when --config is not given.
const EnvConfigFile = EnvPrefix + "CONFIG"

// Loader fills a Config from a TOML file, the environment and flags. Register its flags on a
// FlagSet, parse the command line, then call Load.
type Loader struct {
	path   string
	flags  map[string]string // toml key -> raw value, for flags given on the command line
	fields []field
}

// field is one scalar setting reachable from the top of Config.
type field struct {
	key   string // TOML key
	index []int  // reflect path from Config
	kind  reflect.Type
	usage string
	bool  bool // takes no value on the command line
}

// Env is the environment variable of a TOML key.
func Env(key string) string { return EnvPrefix + strings.ToUpper(key) }

// Flag is the flag name of a TOML key.
func Flag(key string) string { return strings.ReplaceAll(key, "_", "-") }

// Register adds --config and a flag for every scalar setting to fs.
func Register(fs *flag.FlagSet) *Loader {
	l := &Loader{flags: map[string]string{}, fields: scalarFields(reflect.TypeFor[Config](), nil)}
	fs.StringVar(&l.path, "config", "", "TOML config file (also "+EnvConfigFile+")")
	def := reflect.ValueOf(Default()).Elem()
	for _, f := range l.fields {
		usage := f.usage
		if usage == "" {
			usage = "see docs/configuration.md"
		}
		if d := format(def.FieldByIndex(f.index)); d != "" {
			usage += " (default " + d + ")"
		}
		fs.Var(&flagValue{l: l, f: f}, Flag(f.key), usage+"; env "+Env(f.key))
	}
	return l
}

// Load returns the configuration: defaults, then the file (from --config or CODINGPLAN_CONFIG),
// then CODINGPLAN_* variables, then flags; then the model defaults, then Validate.
func (l *Loader) Load(getenv func(string) string) (*Config, error) {
	c := Default()
	path := l.path
	if path == "" {
		path = getenv(EnvConfigFile)
	}
	if path != "" {
		if err := decodeFile(path, c); err != nil {
			return nil, err
		}
	}
	v := reflect.ValueOf(c).Elem()
	for _, f := range l.fields {
		if raw := getenv(Env(f.key)); raw != "" {
			if err := set(v.FieldByIndex(f.index), raw); err != nil {
				return nil, fmt.Errorf("config: %s: %w", Env(f.key), err)
			}
		}
	}
	for _, f := range l.fields {
		if raw, ok := l.flags[f.key]; ok {
			if err := set(v.FieldByIndex(f.index), raw); err != nil {
				return nil, fmt.Errorf("config: --%s: %w", Flag(f.key), err)
			}
		}
	}
	c.applyModelDefaults(getenv)
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// decodeFile reads path over c. Tables replace defaults rather than merging into them: a file
// that names any plan offers exactly those plans (toml would otherwise add its entries to the
// default map, and a token for a built-in plan the operator never offered would be admitted).
func decodeFile(path string, c *Config) error {
	defaultPlans := c.Plans
	c.Plans = nil
	md, err := toml.DecodeFile(path, c)
	if err != nil {
		return fmt.Errorf("config: %s: %w", path, err)
	}
	if !md.IsDefined("plans") {
		c.Plans = defaultPlans
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		sort.Strings(keys)
		return fmt.Errorf("config: %s: unknown keys: %s", path, strings.Join(keys, ", "))
	}
	return nil
}

var durationType = reflect.TypeFor[time.Duration]()

// scalarFields lists the settings of t that env and flags can set, following anonymous
// (embedded) structs.
func scalarFields(t reflect.Type, index []int) []field {
	var out []field
	for i := range t.NumField() {
		sf := t.Field(i)
		idx := append(append([]int(nil), index...), i)
		if sf.Anonymous && sf.Type.Kind() == reflect.Struct {
			out = append(out, scalarFields(sf.Type, idx)...)
			continue
		}
		key, _, _ := strings.Cut(sf.Tag.Get("toml"), ",")
		if key == "" || key == "-" || !settable(sf.Type) {
			continue
		}
		out = append(out, field{
			key: key, index: idx, kind: sf.Type, usage: sf.Tag.Get("usage"),
			bool: sf.Type.Kind() == reflect.Bool || sf.Tag.Get("boolflag") == "true",
		})
	}
	return out
}

func settable(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.String, reflect.Int, reflect.Bool:
		return true
	case reflect.Int64:
		return t == durationType
	case reflect.Slice:
		return t.Elem().Kind() == reflect.String
	}
	return false
}

// set parses raw into v by v's type. Lists are comma-separated.
func set(v reflect.Value, raw string) error {
	switch {
	case v.Type() == durationType:
		d, err := time.ParseDuration(raw)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(raw)
	case v.Kind() == reflect.Int:
		n, err := strconv.Atoi(raw)
		if err != nil {
			return errors.New("not an integer")
		}
		v.SetInt(int64(n))
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return errors.New("not true or false")
		}
		v.SetBool(b)
	case v.Kind() == reflect.Slice:
		var list []string
		for _, s := range strings.Split(raw, ",") {
			if s = strings.TrimSpace(s); s != "" {
				list = append(list, s)
			}
		}
		v.Set(reflect.ValueOf(list))
	default:
		return fmt.Errorf("cannot set a %s", v.Type())
	}
	return nil
}

// format renders a default for flag help; empty for zero values.
func format(v reflect.Value) string {
	if v.IsZero() {
		return ""
	}
	if v.Type() == durationType {
		return time.Duration(v.Int()).String()
	}
	if v.Kind() == reflect.Slice {
		return strings.Join(v.Interface().([]string), ",")
	}
	return fmt.Sprint(v.Interface())
}

// flagValue records a flag's raw value for Load, so flags apply after the file and env.
type flagValue struct {
	l *Loader
	f field
}

func (fv *flagValue) String() string {
	if fv == nil || fv.l == nil {
		return ""
	}
	return fv.l.flags[fv.f.key]
}

func (fv *flagValue) Set(s string) error {
	if err := set(reflect.New(fv.f.kind).Elem(), s); err != nil {
		return err
	}
	fv.l.flags[fv.f.key] = s
	return nil
}

func (fv *flagValue) IsBoolFlag() bool { return fv.f.bool }
