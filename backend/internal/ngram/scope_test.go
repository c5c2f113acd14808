package ngram

import (
	"strings"
	"testing"
)

func TestGoScope(t *testing.T) {
	prefix := `package server

import (
	"context"
	j "encoding/json"
	_ "embed"
	"math/rand/v2"
	"gopkg.in/yaml.v3"
)

import "net/http"

const Version = "1"

var (
	errGone, errFull = errors.New("gone"), errors.New("full")
	limit int
)

type (
	Server struct {
		inner int
	}
)

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	var seen int
	_ = seen
}

func Load(ctx context.Context, path string) (cfg *Config, err error) {
	data := read(path)
	`
	suffix := `
	return parse(later)
}

func Later() {}

func other() { hidden := 1 }
`
	s := goScope([]byte(prefix), []byte(suffix), [][]byte{[]byte("package server\n\ntype Config struct{}\n\nfunc read(p string) []byte { return nil }\n")})
	for _, tt := range []struct {
		name string
		want bool
	}{
		{"context", true}, {"j", true}, {"json", false}, {"embed", false}, {"rand", true}, {"yaml", true}, {"http", true},
		{"Version", true}, {"errGone", true}, {"errFull", true}, {"limit", true}, {"Server", true}, {"inner", false},
		{"handle", false}, {"w", false}, {"r", false}, {"seen", false}, {"s", false},
		{"Load", true}, {"ctx", true}, {"path", true}, {"cfg", true}, {"err", true}, {"data", true},
		{"parse", true}, {"later", true}, {"Later", true}, {"other", true}, {"hidden", false},
		{"Config", true}, {"read", true}, {"nil", true}, {"append", true}, {"os", false},
	} {
		if got := s.has(tt.name); got != tt.want {
			t.Errorf("in scope %q: %v, want %v", tt.name, got, tt.want)
		}
	}
	if !s.written("http", "ResponseWriter") || s.written("http", "Response") || s.written("http", "Error") {
		t.Error("written: want http.ResponseWriter only")
	}
}

// TestSnippetsInScope: the request's other open files name what a
// completion may use.
func TestSnippetsInScope(t *testing.T) {
	m := openModel(t, testConfig(t))
	in := Input{Prefix: []byte("package x\n\nfunc f() {\n\t"), Language: "go"}
	g, _ := m.newGeneration(in, true)
	if g.scope.has("fromSnippet") {
		t.Fatal("in scope without the snippet")
	}
	in.Snippets = [][]byte{[]byte("package x\n\nfunc fromSnippet() {}\n")}
	if g, _ = m.newGeneration(in, true); !g.scope.has("fromSnippet") {
		t.Error("a snippet's function is not in scope")
	}
}

func TestArities(t *testing.T) {
	src := "package x\n\nimport (\n\t\"context\"\n\t\"fmt\"\n)\n\nfunc f() {\n\tctx, cancel := context.WithCancel(context.Background())\n" +
		"\tfmt.Println()\n\tfmt.Println(a, f(b, c), []int{1, 2},\n\t)\n\tx.y.Call(1, 2)\n}\n"
	counts := map[string]uint32{}
	countCalls(layout(tokenize(nil, []byte(src), "go"), []byte(src)), []byte(src), counts)
	a := newArities(counts)
	for _, tt := range []struct {
		key  string
		want uint32
	}{
		{"context.WithCancel", 1 << 1}, {"context.Background", 1 << 0}, {"fmt.Println", 1<<0 | 1<<3}, {"y.Call", 0}, {"x.y", 0},
	} {
		pkg, name, _ := strings.Cut(tt.key, ".")
		if got := a.mask(pkg, name); got != tt.want {
			t.Errorf("%s: mask %b, want %b", tt.key, got, tt.want)
		}
	}
	if !allows(1<<1, 1, false) || allows(1<<1, 2, false) || !allows(1<<1, 1, true) || allows(1<<1, 2, true) || !allows(0, 5, false) {
		t.Error("allows")
	}
}
