package ngram

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestExpLoad(t *testing.T) {
	state := os.Getenv("EXPSTATE")
	if state == "" {
		t.Skip()
	}
	ctx := context.Background()
	cfg := Config{StateDir: state}.withDefaults()
	t0 := time.Now()
	dirs, _ := corpusDirs(ctx, cfg, discard)
	t1 := time.Now()
	files, _ := listCorpus(ctx, dirs)
	t2 := time.Now()
	fp := fingerprint(cfg, files)
	t3 := time.Now()
	data, _ := os.ReadFile(filepath.Join(state, fileName))
	t4 := time.Now()
	_ = data
	m, err := load(filepath.Join(state, fileName), fp)
	t5 := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	m.derive()
	t6 := time.Now()
	t.Logf("goroot %v list %v fp %v read %v load(incl derive) %v derive %v", t1.Sub(t0), t2.Sub(t1), t3.Sub(t2), t4.Sub(t3), t5.Sub(t4), t6.Sub(t5))
}
