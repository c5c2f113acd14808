// Package settings fills a settings struct the way both of the project's services are
// configured: its defaults, then a TOML file, then environment variables, then flags, in
// increasing precedence. Every scalar field with a `toml` tag (string, int, bool, duration,
// list of strings) gets an environment variable and a flag; fields of an embedded struct are
// its own, those of a named struct field take a dotted key ("rate.token_burst": env
// <PREFIX>RATE_TOKEN_BURST, flag --rate-token-burst). A `usage` tag is the flag's help; a
// string field tagged `boolflag:"true"` also takes its flag bare (--valkey-cluster means true).
package settings

import (
	"errors"
	"flag"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Spec describes one service's settings struct T.
type Spec[T any] struct {
	// Name starts error messages ("config", "accounts").
	Name string
	// EnvPrefix starts every environment variable, e.g. "CODINGPLAN_".
	EnvPrefix string
	// Default returns the settings used when nothing is set.
	Default func() *T
	// Replace names the top-level tables that a file replaces rather than merges into the
	// defaults: a file that names any plan offers exactly those plans (toml would otherwise add
	// its entries to the default map).
	Replace []string
}

// ConfigEnv is the environment variable naming the config file when --config is not given.
func (s Spec[T]) ConfigEnv() string { return s.EnvPrefix + "CONFIG" }

// Env is the environment variable of a (dotted) TOML key.
func (s Spec[T]) Env(key string) string {
	return s.EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// Flag is the flag name of a (dotted) TOML key.
func Flag(key string) string { return strings.NewReplacer("_", "-", ".", "-").Replace(key) }

// Keys lists every key that the environment and flags can set.
func (s Spec[T]) Keys() []string {
	var out []string
	for _, f := range scalarFields(reflect.TypeFor[T](), nil, "") {
		out = append(out, f.key)
	}
	return out
}

// Field describes one setting, for tests that hold the docs and the struct together.
type Field struct {
	Key   string // (dotted) TOML key
	Usage string // the usage tag
	Top   bool   // a field of T itself, not of a struct within it
}

// Fields lists every setting the environment and flags can set.
func (s Spec[T]) Fields() []Field {
	var out []Field
	for _, f := range scalarFields(reflect.TypeFor[T](), nil, "") {
		out = append(out, Field{Key: f.key, Usage: f.usage, Top: len(f.index) == 1})
	}
	return out
}

// Loader fills a T. Register its flags on a FlagSet, parse the command line, then Load.
type Loader[T any] struct {
	spec   Spec[T]
	path   string
	flags  map[string]string // key -> raw value, for flags given on the command line
	fields []field
}

// field is one scalar setting.
type field struct {
	key   string // (dotted) TOML key
	index []int  // reflect path from T
	typ   reflect.Type
	usage string
	bool  bool // takes no value on the command line
}

// Register adds --config and a flag for every scalar setting to fs.
func Register[T any](fs *flag.FlagSet, spec Spec[T]) *Loader[T] {
	l := &Loader[T]{spec: spec, flags: map[string]string{}, fields: scalarFields(reflect.TypeFor[T](), nil, "")}
	fs.StringVar(&l.path, "config", "", "TOML config file (also "+spec.ConfigEnv()+")")
	def := reflect.ValueOf(spec.Default()).Elem()
	for _, f := range l.fields {
		usage := f.usage
		if usage == "" {
			usage = "see the documentation"
		}
		if d := format(def.FieldByIndex(f.index)); d != "" {
			usage += " (default " + d + ")"
		}
		fs.Var(&flagValue[T]{l: l, f: f}, Flag(f.key), usage+"; env "+spec.Env(f.key))
	}
	return l
}

// Load returns the defaults overlaid with the file (from --config or the ConfigEnv variable),
// the environment and the flags. Validation is the caller's.
func (l *Loader[T]) Load(getenv func(string) string) (*T, error) {
	c := l.spec.Default()
	path := l.path
	if path == "" {
		path = getenv(l.spec.ConfigEnv())
	}
	if path != "" {
		if err := l.decodeFile(path, c); err != nil {
			return nil, err
		}
	}
	v := reflect.ValueOf(c).Elem()
	for _, f := range l.fields {
		if raw := getenv(l.spec.Env(f.key)); raw != "" {
			if err := set(v.FieldByIndex(f.index), raw); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", l.spec.Name, l.spec.Env(f.key), err)
			}
		}
	}
	for _, f := range l.fields {
		if raw, ok := l.flags[f.key]; ok {
			if err := set(v.FieldByIndex(f.index), raw); err != nil {
				return nil, fmt.Errorf("%s: --%s: %w", l.spec.Name, Flag(f.key), err)
			}
		}
	}
	return c, nil
}

// decodeFile reads path over c; unknown keys are an error, and the Replace tables replace
// the defaults when the file names them.
func (l *Loader[T]) decodeFile(path string, c *T) error {
	v := reflect.ValueOf(c).Elem()
	saved := map[string]reflect.Value{}
	for _, name := range l.spec.Replace {
		fv := tableField(v, name)
		saved[name] = reflect.ValueOf(fv.Interface())
		fv.Set(reflect.Zero(fv.Type()))
	}
	md, err := toml.DecodeFile(path, c)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", l.spec.Name, path, err)
	}
	for name, def := range saved {
		if !md.IsDefined(name) {
			tableField(v, name).Set(def)
		}
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		sort.Strings(keys)
		return fmt.Errorf("%s: %s: unknown keys: %s", l.spec.Name, path, strings.Join(keys, ", "))
	}
	return nil
}

// tableField is the top-level field whose toml key is name; Spec.Replace must name one.
func tableField(v reflect.Value, name string) reflect.Value {
	t := v.Type()
	for i := range t.NumField() {
		if key, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ","); key == name {
			return v.Field(i)
		}
	}
	panic(fmt.Sprintf("settings: %s has no field with toml key %q", t, name))
}

var durationType = reflect.TypeFor[time.Duration]()

// scalarFields lists the settings of t that the environment and flags can set.
func scalarFields(t reflect.Type, index []int, prefix string) []field {
	var out []field
	for i := range t.NumField() {
		sf := t.Field(i)
		idx := append(slices.Clone(index), i)
		if sf.Anonymous && sf.Type.Kind() == reflect.Struct {
			out = append(out, scalarFields(sf.Type, idx, prefix)...)
			continue
		}
		key, _, _ := strings.Cut(sf.Tag.Get("toml"), ",")
		if key == "" || key == "-" {
			continue
		}
		switch {
		case sf.Type.Kind() == reflect.Struct && sf.Type != durationType:
			out = append(out, scalarFields(sf.Type, idx, prefix+key+".")...)
		case settable(sf.Type):
			out = append(out, field{
				key: prefix + key, index: idx, typ: sf.Type, usage: sf.Tag.Get("usage"),
				bool: sf.Type.Kind() == reflect.Bool || sf.Tag.Get("boolflag") == "true",
			})
		}
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
type flagValue[T any] struct {
	l *Loader[T]
	f field
}

func (fv *flagValue[T]) String() string {
	if fv == nil || fv.l == nil {
		return ""
	}
	return fv.l.flags[fv.f.key]
}

func (fv *flagValue[T]) Set(s string) error {
	if err := set(reflect.New(fv.f.typ).Elem(), s); err != nil {
		return err
	}
	fv.l.flags[fv.f.key] = s
	return nil
}

// IsBoolFlag lets a bool (or boolflag) setting's flag stand alone.
func (fv *flagValue[T]) IsBoolFlag() bool { return fv.f.bool }
