package config

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/codingplan/codingplan/backend/internal/upstream"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func load(t *testing.T, args []string, vars map[string]string) (*Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	l := Register(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return l.Load(env(vars))
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "backend.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDefaults(t *testing.T) {
	c, err := load(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.PlanLimits(), map[string]int{"lite": 1, "pro": 3, "max": 10}; !reflect.DeepEqual(got, want) {
		t.Errorf("plans: got %v, want %v", got, want)
	}
	if c.Listen != "127.0.0.1:8787" || c.StateDir == "" || c.LogLevel != "info" {
		t.Errorf("defaults: listen=%q state_dir=%q log_level=%q", c.Listen, c.StateDir, c.LogLevel)
	}
	if len(c.Models) != 1 || c.Models[0].Provider != upstream.KindLocal || c.DefaultModel != LocalModel {
		t.Errorf("default models: got %+v default %q, want the local model", c.Models, c.DefaultModel)
	}
	if addrs, _, _ := c.ValkeyAddrs(); addrs != nil {
		t.Errorf("default valkey: got %v, want none", addrs)
	}
	if c.MaxConnsPerNode != 32 || c.MaxConns != 64 || c.UpgradesPerMinute != 60 || c.UpgradeBurst != 300 {
		t.Errorf("connection limits: %d per node, %d in all, %d upgrades a minute, burst %d", c.MaxConnsPerNode, c.MaxConns, c.UpgradesPerMinute, c.UpgradeBurst)
	}
}

// TestPrecedence sets one key in the file, env and flags and checks the strongest wins.
func TestPrecedence(t *testing.T) {
	file := writeFile(t, "listen = \"file:1\"\nlog_level = \"warn\"\nlease_max_wait = \"5s\"\n")
	tests := []struct {
		name   string
		args   []string
		vars   map[string]string
		listen string
		wait   time.Duration
	}{
		{"file", []string{"--config", file}, nil, "file:1", 5 * time.Second},
		{"file from env", nil, map[string]string{EnvConfigFile: file}, "file:1", 5 * time.Second},
		{"env over file", []string{"--config", file}, map[string]string{"CODINGPLAN_LISTEN": "env:2", "CODINGPLAN_LEASE_MAX_WAIT": "1s"}, "env:2", time.Second},
		{"flag over env", []string{"--config", file, "--listen", "flag:3", "--lease-max-wait=0s"}, map[string]string{"CODINGPLAN_LISTEN": "env:2"}, "flag:3", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, tt.args, tt.vars)
			if err != nil {
				t.Fatal(err)
			}
			if c.Listen != tt.listen || c.LeaseMaxWait != tt.wait {
				t.Errorf("got listen=%q wait=%v, want %q %v", c.Listen, c.LeaseMaxWait, tt.listen, tt.wait)
			}
			if c.LogLevel != "warn" {
				t.Errorf("log_level from the file lost: %q", c.LogLevel)
			}
		})
	}
}

func TestValkeyCluster(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		addrs   []string
		cluster bool
		wantErr bool
	}{
		{"none", nil, nil, false, false},
		{"single", []string{"--valkey", "127.0.0.1:6390"}, []string{"127.0.0.1:6390"}, false, false},
		{"bare flag", []string{"--valkey", "h:7001", "--valkey-cluster"}, []string{"h:7001"}, true, false},
		{"seed list", []string{"--valkey-cluster=a:1, b:2"}, []string{"a:1", "b:2"}, true, false},
		{"cluster without seed", []string{"--valkey-cluster"}, nil, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, tt.args, nil)
			if tt.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			addrs, cluster, _ := c.ValkeyAddrs()
			if !slices.Equal(addrs, tt.addrs) || cluster != tt.cluster {
				t.Errorf("got %v cluster=%v, want %v cluster=%v", addrs, cluster, tt.addrs, tt.cluster)
			}
		})
	}
}

// TestPlansReplaceDefaults: a file that names plans offers exactly those; the built-in ones
// (lite, pro, max) are not merged in, so their tokens are refused at the upgrade.
func TestPlansReplaceDefaults(t *testing.T) {
	file := writeFile(t, "[plans.two]\nconcurrency = 2\n\n[plans.pro]\nconcurrency = 5\n")
	c, err := load(t, []string{"--config", file}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.PlanLimits(), map[string]int{"two": 2, "pro": 5}; !reflect.DeepEqual(got, want) {
		t.Errorf("plans: got %v, want %v", got, want)
	}
	// A file without plans keeps the defaults.
	c, err = load(t, []string{"--config", writeFile(t, "log_level = \"warn\"\n")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.PlanLimits(), map[string]int{"lite": 1, "pro": 3, "max": 10}; !reflect.DeepEqual(got, want) {
		t.Errorf("plans without a [plans] table: got %v, want %v", got, want)
	}
}

func TestInvalid(t *testing.T) {
	tests := []struct {
		name string
		args []string
		vars map[string]string
		file string
	}{
		{"bad level", []string{"--log-level", "loud"}, nil, ""},
		{"bad duration env", nil, map[string]string{"CODINGPLAN_LEASE_TTL": "soon"}, ""},
		{"bad int flag", []string{"--node-cap", "many"}, nil, ""},
		{"unknown file key", nil, nil, "listn = \"x\"\n"},
		{"zero plan", nil, nil, "[plans.free]\nconcurrency = 0\n"},
		{"empty plans table", nil, nil, "plans = {}\n"},
		{"in flight over the protocol", []string{"--max-in-flight", "17"}, nil, ""},
		{"ping after idle", []string{"--ping-interval", "2m"}, nil, ""},
		{"negative conns", []string{"--max-conns", "-1"}, nil, ""},
		{"rate without burst", []string{"--upgrade-burst", "0"}, nil, ""},
		{"zero conn count ttl", nil, map[string]string{"CODINGPLAN_CONN_COUNT_TTL": "0s"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.file != "" {
				args = append(args, "--config", writeFile(t, tt.file))
			}
			if c, err := load(t, args, tt.vars); err == nil {
				t.Errorf("loaded %+v, want an error", c)
			}
		})
	}
}

func TestOpenAIShortcut(t *testing.T) {
	vars := map[string]string{
		"CODINGPLAN_OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
		"CODINGPLAN_OPENAI_MODEL":    "gpt-test",
		OpenAIKeyEnv:                 "sk-test",
	}
	c, err := load(t, nil, vars)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Models) != 2 || c.DefaultModel != OpenAIModel {
		t.Fatalf("models: got %+v default %q", c.Models, c.DefaultModel)
	}
	m := c.Models[0]
	if m.Provider != upstream.KindOpenAIChat || m.BaseURL != vars["CODINGPLAN_OPENAI_BASE_URL"] || m.Model != "gpt-test" || m.APIKeyEnv != OpenAIKeyEnv {
		t.Errorf("openai model: got %+v", m)
	}
	// A file with models wins over the shortcut.
	file := writeFile(t, "[[models]]\nname = \"x\"\nprovider = \"local\"\n")
	c, err = load(t, []string{"--config", file}, vars)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Models) != 1 || c.Models[0].Name != "x" {
		t.Errorf("file models replaced: %+v", c.Models)
	}
}

// tomlKeys returns every TOML key of t and the structs it contains.
func tomlKeys(t reflect.Type, seen map[reflect.Type]bool, out map[string]bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] || t.PkgPath() == "time" {
		return
	}
	seen[t] = true
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if key, _, _ := strings.Cut(f.Tag.Get("toml"), ","); key != "" && key != "-" {
			out[key] = true
		}
		tomlKeys(f.Type, seen, out)
	}
}

func readDoc(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	// The backend's part only: the language server's section has keys of its own.
	if i := strings.Index(doc, "\n## Language server"); i >= 0 {
		doc = doc[:i]
	}
	return doc
}

// TestDocsCoverEveryKey checks docs/configuration.md mentions every key of Config (and of the
// tables inside it) as `key`, and every key it documents in a table exists.
func TestDocsCoverEveryKey(t *testing.T) {
	doc := readDoc(t)
	keys := map[string]bool{}
	tomlKeys(reflect.TypeFor[Config](), map[reflect.Type]bool{}, keys)
	if len(keys) < 30 {
		t.Fatalf("found only %d keys; the walk is broken", len(keys))
	}
	for k := range keys {
		if !strings.Contains(doc, "`"+k+"`") {
			t.Errorf("docs/configuration.md does not document `%s`", k)
		}
	}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\|").FindAllStringSubmatch(doc, -1) {
		if !keys[m[1]] {
			t.Errorf("docs/configuration.md documents `%s`, which Config does not have", m[1])
		}
	}
}

// TestDocsExampleLoads loads the complete example of docs/configuration.md and checks it sets
// every top-level scalar key (so the example stays complete).
func TestDocsExampleLoads(t *testing.T) {
	doc := readDoc(t)
	m := regexp.MustCompile("(?s)### Complete example.*?```toml\n(.*?)```").FindStringSubmatch(doc)
	if m == nil {
		t.Fatal("no toml block under \"### Complete example\"")
	}
	c, err := load(t, []string{"--config", writeFile(t, m[1])}, nil)
	if err != nil {
		t.Fatalf("example does not load: %v", err)
	}
	for _, key := range spec.Keys() {
		if !regexp.MustCompile(`(?m)^` + key + ` = `).MatchString(m[1]) {
			t.Errorf("example does not set %s", key)
		}
	}
	if got := len(c.Models); got != 3 {
		t.Errorf("example models: got %d, want 3", got)
	}
	if c.Models[0].Timeouts.FirstToken != 5*time.Second || c.PlanModels["lite"][0] != "fast" {
		t.Errorf("example tables not decoded: %+v %+v", c.Models[0].Timeouts, c.PlanModels)
	}
}

// TestFlagsCoverScalars checks every scalar field has a flag and an env variable name.
func TestFlagsCoverScalars(t *testing.T) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	Register(fs)
	for _, f := range spec.Fields() {
		if fs.Lookup(Flag(f.Key)) == nil {
			t.Errorf("no flag for %s", f.Key)
		}
		// Fields of embedded structs (upstream.Config) carry no usage tag; ours must.
		if f.Top && f.Usage == "" {
			t.Errorf("field %s has no usage tag", f.Key)
		}
	}
	for _, name := range []string{"listen", "valkey", "valkey-cluster", "state-dir", "log-level", "jwks", "config", "default-model"} {
		if fs.Lookup(name) == nil {
			t.Errorf("flag --%s missing", name)
		}
	}
}
