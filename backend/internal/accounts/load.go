package accounts

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

// Loader fills Settings from a TOML file, CODINGPLAN_ACCOUNTS_* variables and flags, in
// increasing precedence: the same rules as backend/internal/config, over this struct.
type Loader struct {
	path   string
	flags  map[string]string // dotted toml key -> raw flag value
	fields []field
}

type field struct {
	key   string // dotted TOML key
	index []int
	typ   reflect.Type
	usage string
}

// Env is the environment variable of a dotted TOML key.
func Env(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// Flag is the flag name of a dotted TOML key.
func Flag(key string) string { return strings.NewReplacer("_", "-", ".", "-").Replace(key) }

// Keys lists every dotted TOML key that env and flags can set.
func Keys() []string {
	var out []string
	for _, f := range scalarFields(reflect.TypeFor[Settings](), nil, "") {
		out = append(out, f.key)
	}
	return out
}

// Register adds --config and a flag for every scalar setting to fs.
func Register(fs *flag.FlagSet) *Loader {
	l := &Loader{flags: map[string]string{}, fields: scalarFields(reflect.TypeFor[Settings](), nil, "")}
	fs.StringVar(&l.path, "config", "", "TOML config file (also "+EnvConfigFile+")")
	def := reflect.ValueOf(DefaultSettings()).Elem()
	for _, f := range l.fields {
		usage := f.usage
		if d := format(def.FieldByIndex(f.index)); d != "" {
			usage += " (default " + d + ")"
		}
		fs.Var(&flagValue{l: l, f: f}, Flag(f.key), usage+"; env "+Env(f.key))
	}
	return l
}

// Load returns the settings: defaults, the file, the environment, the flags; then Validate.
func (l *Loader) Load(getenv func(string) string) (*Settings, error) {
	s := DefaultSettings()
	path := l.path
	if path == "" {
		path = getenv(EnvConfigFile)
	}
	if path != "" {
		defPlans := s.Plans
		s.Plans = nil
		md, err := toml.DecodeFile(path, s)
		if err != nil {
			return nil, fmt.Errorf("accounts: %s: %w", path, err)
		}
		if !md.IsDefined("plans") {
			s.Plans = defPlans
		}
		if und := md.Undecoded(); len(und) > 0 {
			keys := make([]string, len(und))
			for i, k := range und {
				keys[i] = k.String()
			}
			sort.Strings(keys)
			return nil, fmt.Errorf("accounts: %s: unknown keys: %s", path, strings.Join(keys, ", "))
		}
	}
	v := reflect.ValueOf(s).Elem()
	for _, f := range l.fields {
		if raw := getenv(Env(f.key)); raw != "" {
			if err := set(v.FieldByIndex(f.index), raw); err != nil {
				return nil, fmt.Errorf("accounts: %s: %w", Env(f.key), err)
			}
		}
	}
	for _, f := range l.fields {
		if raw, ok := l.flags[f.key]; ok {
			if err := set(v.FieldByIndex(f.index), raw); err != nil {
				return nil, fmt.Errorf("accounts: --%s: %w", Flag(f.key), err)
			}
		}
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}

var durationType = reflect.TypeFor[time.Duration]()

func scalarFields(t reflect.Type, index []int, prefix string) []field {
	var out []field
	for i := range t.NumField() {
		sf := t.Field(i)
		key, _, _ := strings.Cut(sf.Tag.Get("toml"), ",")
		if key == "" || key == "-" {
			continue
		}
		idx := append(slices.Clone(index), i)
		switch {
		case sf.Type.Kind() == reflect.Struct:
			out = append(out, scalarFields(sf.Type, idx, prefix+key+".")...)
		case settable(sf.Type):
			out = append(out, field{key: prefix + key, index: idx, typ: sf.Type, usage: sf.Tag.Get("usage")})
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
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return errors.New("not true or false")
		}
		v.SetBool(b)
	case v.Kind() == reflect.Int:
		n, err := strconv.Atoi(raw)
		if err != nil {
			return errors.New("not an integer")
		}
		v.SetInt(int64(n))
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

// IsBoolFlag lets a bool setting's flag stand alone (--valkey-tls).
func (fv *flagValue) IsBoolFlag() bool { return fv.f.typ.Kind() == reflect.Bool }

func (fv *flagValue) Set(s string) error {
	if err := set(reflect.New(fv.f.typ).Elem(), s); err != nil {
		return err
	}
	fv.l.flags[fv.f.key] = s
	return nil
}
