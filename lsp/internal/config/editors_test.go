package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// The editors declare the server's settings too: the VS Code extension in package.json's
// contributes.configuration (keys "codingplan.<json name>", with the server's defaults, so the
// Settings UI shows them), the Neovim plugin as a table of option types it validates against.
// These tests fail when a field of Settings is added, renamed, retyped or its default changes
// without the editors following.

const repoRoot = "../../.."

// settingsFields returns the json name and Go type of every field of Settings.
func settingsFields(t *testing.T) map[string]reflect.Type {
	t.Helper()
	fields := map[string]reflect.Type{}
	st := reflect.TypeOf(Settings{})
	for i := range st.NumField() {
		f := st.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			t.Fatalf("Settings.%s has no json name", f.Name)
		}
		fields[name] = f.Type
	}
	return fields
}

// enableType is the enable setting's type: a boolean or an object of language ids.
var enableType = reflect.TypeFor[Enable]()

// vscodeType is the JSON schema type VS Code's configuration uses for a Go type.
func vscodeType(t reflect.Type) any {
	if t == enableType {
		return []any{"boolean", "object"}
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int32, reflect.Int64:
		return "integer"
	case reflect.Slice:
		return "array"
	}
	return "unknown:" + t.String()
}

// luaType is the Lua type() of a Go type's values once decoded from JSON ("a|b": either).
func luaType(t reflect.Type) string {
	if t == enableType {
		return "boolean|table"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int32, reflect.Int64, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Map, reflect.Struct:
		return "table"
	}
	return "unknown:" + t.String()
}

// defaults returns Default() as JSON values, keyed by json name.
func defaults(t *testing.T) map[string]any {
	t.Helper()
	d := Default()
	v := reflect.ValueOf(d)
	out := map[string]any{}
	for i := range v.NumField() {
		f := v.Type().Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Type.Kind() == reflect.String && f.Type.String() != "string" {
			// wire.Secret and friends: compare as the plain string they hold.
			out[name] = v.Field(i).String()
			continue
		}
		b, err := json.Marshal(v.Field(i).Interface())
		if err != nil {
			t.Fatalf("marshal default %s: %v", name, err)
		}
		var x any
		if err := json.Unmarshal(b, &x); err != nil {
			t.Fatal(err)
		}
		out[name] = x
	}
	return out
}

func TestVSCodeSettingsMatchServer(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "editors/vscode/package.json"))
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct {
		Contributes struct {
			Configuration struct {
				Properties map[string]struct {
					Type    any    `json:"type"`
					Default any    `json:"default"`
					Scope   string `json:"scope"`
				} `json:"properties"`
			} `json:"configuration"`
		} `json:"contributes"`
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		t.Fatalf("editors/vscode/package.json: %v", err)
	}
	props := pkg.Contributes.Configuration.Properties
	// The token lives in VS Code's SecretStorage, never in settings.json; serverPath is the
	// extension's own setting.
	notInVSCode := map[string]bool{"token": true}
	clientOnly := map[string]bool{"serverPath": true}

	fields := settingsFields(t)
	defs := defaults(t)
	for name, typ := range fields {
		if notInVSCode[name] {
			if _, ok := props["codingplan."+name]; ok {
				t.Errorf("codingplan.%s must not be a VS Code setting (it is kept in SecretStorage)", name)
			}
			continue
		}
		p, ok := props["codingplan."+name]
		if !ok {
			t.Errorf("package.json lacks codingplan.%s", name)
			continue
		}
		if got, want := p.Type, vscodeType(typ); !reflect.DeepEqual(got, want) {
			t.Errorf("codingplan.%s: type %v, want %v", name, got, want)
		}
		if got, want := p.Default, defs[name]; !reflect.DeepEqual(got, want) {
			t.Errorf("codingplan.%s: default %#v, want %#v (config.Default)", name, got, want)
		}
	}
	// Where the token goes and how its connection is secured is the user's choice, never a
	// workspace's (.vscode/settings.json of a cloned repository).
	for _, name := range []string{"backendUrl", "allowInsecureBackend", "caFile", "serverPath"} {
		if got := props["codingplan."+name].Scope; got != "machine" {
			t.Errorf(`codingplan.%s: scope %q, want "machine"`, name, got)
		}
	}
	for key := range props {
		name := strings.TrimPrefix(key, "codingplan.")
		if _, ok := fields[name]; !ok && !clientOnly[name] {
			t.Errorf("package.json declares %s, which the server does not have", key)
		}
	}
}

func TestNeovimSettingsMatchServer(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "editors/neovim/lua/codingplan/config.lua"))
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile(`(?s)-- settings:begin\n(.*?)-- settings:end`).FindSubmatch(b)
	if block == nil {
		t.Fatal("config.lua: no -- settings:begin ... -- settings:end block")
	}
	got := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^\s*(\w+)\s*=\s*'([\w|]+)',`).FindAllSubmatch(block[1], -1) {
		got[string(m[1])] = string(m[2])
	}
	want := map[string]string{}
	for name, typ := range settingsFields(t) {
		want[name] = luaType(typ)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("config.lua server_settings:\n got %v\nwant %v", sorted(got), sorted(want))
	}
}

func sorted(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}
