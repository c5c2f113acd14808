package ngram

import (
	"path/filepath"
	"strings"
	"testing"
)

// benchPrefix is a realistic Go file up to a cursor.
var benchPrefix = `package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Config is the server's configuration.
type Config struct {
	Addr    string        ` + "`json:\"addr\"`" + `
	Timeout time.Duration ` + "`json:\"timeout\"`" + `
}

// LoadConfig reads the configuration file at path.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	var cfg Config
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("parse config: %w", err)
	}
	return &cfg, nil
}

// Server serves the API.
type Server struct {
	cfg *Config
	srv *http.Server
}

// Run serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() {
		errc <- s.srv.ListenAndServe()
	}()
	select {
	case <-ctx.Done():
		shutdownCtx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
		defer cancel()
		return s.srv.Shutdown(shutdownCtx)
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name string
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
`

func BenchmarkComplete(b *testing.B) {
	m := goModel(b)
	cases := []struct {
		name, prefix string
		multiline    bool
	}{
		{"line", benchPrefix + "\tresp, err := ", false},
		{"partial word", benchPrefix + "\tw.Header().Se", false},
		{"new line", benchPrefix + "\t", false},
		{"multiline", benchPrefix + "\tif req.Name == \"\" ", true},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			prefix, suffix := []byte(c.prefix), []byte("\n}\n")
			var n int
			emit := func(p []byte) error { n += len(p); return nil }
			tokens := 0
			cpu := cpuTime()
			for b.Loop() {
				st, err := m.Complete(b.Context(), Input{Prefix: prefix, Suffix: suffix, Language: "go", MaxTokens: 64, Multiline: c.multiline}, emit)
				if err != nil {
					b.Fatal(err)
				}
				tokens += st.CompletionTokens
			}
			b.ReportMetric(float64(tokens)/float64(b.N), "tokens/op")
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

func BenchmarkLoad(b *testing.B) {
	m := goModel(b)
	path := filepath.Join(goState, fileName)
	cpu := cpuTime()
	for b.Loop() {
		if _, err := load(path, m.info.Fingerprint); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(m.info.FileBytes)/(1<<20), "MiB")
}

func BenchmarkOpen(b *testing.B) {
	goModel(b)
	cpu := cpuTime()
	for b.Loop() {
		if _, err := Open(b.Context(), Config{StateDir: goState}, discard); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
}

func BenchmarkTokenizeGo(b *testing.B) {
	src := []byte(strings.Repeat(benchPrefix, 4))
	b.SetBytes(int64(len(src)))
	var toks []token
	for b.Loop() {
		toks = layout(tokenizeGo(toks[:0], src), src)
	}
}

func BenchmarkTokenizeGeneric(b *testing.B) {
	src := []byte(strings.Repeat(benchPrefix, 4))
	b.SetBytes(int64(len(src)))
	var toks []token
	for b.Loop() {
		toks = layout(tokenizeGeneric(toks[:0], src, syntaxFor("javascript")), src)
	}
}
