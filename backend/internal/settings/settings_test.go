package settings

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

type inner struct {
	Burst int `toml:"burst" usage:"b"`
}

type embedded struct {
	Model string `toml:"model"`
}

type conf struct {
	Name  string         `toml:"name" usage:"n"`
	Wait  time.Duration  `toml:"wait" usage:"w"`
	On    bool           `toml:"on" usage:"o"`
	Seeds string         `toml:"seeds" usage:"s" boolflag:"true"`
	List  []string       `toml:"list" usage:"l"`
	Rate  inner          `toml:"rate"`
	Plans map[string]int `toml:"plans"`
	embedded
}

var testSpec = Spec[conf]{Name: "test", EnvPrefix: "T_", Replace: []string{"plans"}, Default: func() *conf {
	return &conf{Name: "def", Wait: time.Second, Rate: inner{Burst: 5}, Plans: map[string]int{"lite": 1, "pro": 3}}
}}

func load(t *testing.T, file string, env map[string]string, args ...string) (*conf, error) {
	t.Helper()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	l := Register(fs, testSpec)
	if file != "" {
		path := filepath.Join(t.TempDir(), "c.toml")
		if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append([]string{"--config", path}, args...)
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return l.Load(func(k string) string { return env[k] })
}

// TestPrecedence: defaults, then the file, then the environment, then flags; dotted keys for a
// struct's fields, none for an embedded one's; a boolflag string taken bare.
func TestPrecedence(t *testing.T) {
	file := "name = \"file\"\nwait = \"2s\"\nmodel = \"m\"\n[rate]\nburst = 7\n"
	got, err := load(t, file, map[string]string{"T_NAME": "env", "T_RATE_BURST": "8", "T_LIST": "a, b"},
		"--name", "flag", "--on", "--seeds", "--rate-burst=9")
	if err != nil {
		t.Fatal(err)
	}
	want := &conf{Name: "flag", Wait: 2 * time.Second, On: true, Seeds: "true", List: []string{"a", "b"},
		Rate: inner{Burst: 9}, Plans: map[string]int{"lite": 1, "pro": 3}, embedded: embedded{Model: "m"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if keys := strings.Join(testSpec.Keys(), " "); keys != "name wait on seeds list rate.burst model" {
		t.Errorf("keys: %s", keys)
	}
}

// TestReplace: a file that names the plans table replaces the defaults; one that does not
// keeps them.
func TestReplace(t *testing.T) {
	got, err := load(t, "[plans]\ntwo = 2\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Plans, map[string]int{"two": 2}) {
		t.Errorf("plans = %v, want only two", got.Plans)
	}
	got, err = load(t, "name = \"x\"\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Plans) != 2 {
		t.Errorf("plans = %v, want the defaults", got.Plans)
	}
}

// TestErrors: unknown keys and bad values name where they came from.
func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		file string
		env  map[string]string
		args []string
		want string
	}{
		{file: "nope = 1\n", want: "unknown keys: nope"},
		{env: map[string]string{"T_WAIT": "soon"}, want: "T_WAIT"},
		{env: map[string]string{"T_RATE_BURST": "x"}, want: "T_RATE_BURST: not an integer"},
	} {
		if _, err := load(t, tc.file, tc.env, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want it to contain %q", tc, err, tc.want)
		}
	}
	if _, err := load(t, "", nil, "--on=maybe"); err == nil {
		t.Error("--on=maybe accepted")
	}
}
