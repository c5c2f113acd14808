package ngram

import (
	"context"
	"os"
	"testing"
)

func TestExpCache(t *testing.T) {
	state := os.Getenv("EXPSTATE")
	if state == "" {
		t.Skip()
	}
	ctx := context.Background()
	cfg := Config{StateDir: state}
	m, err := Open(ctx, cfg, discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range [][cacheOrder]float32{{0, 0.3, 0.5, 0.7}, {0, 0.4, 0.6, 0.8}, {0, 0.3, 0.6, 0.9}} {
		cacheWeight = w
		res, err := Evaluate(ctx, cfg, m, EvalOptions{MaxFiles: 60}, discard)
		if err != nil {
			t.Fatal(err)
		}
		pct := func(a int, b int) float64 { return 100 * float64(a) / float64(b) }
		t.Logf("%v: top1 %.1f nocache %.1f base %.1f | line exact %.1f nocache %.1f base %.1f prefix %.1f empty %.1f",
			w, pct(res.Top1, res.Tokens), pct(res.Top1NoCache, res.Tokens), pct(res.BaselineTop1, res.Tokens),
			pct(res.LineExact, res.Lines), pct(res.LineExactNoCache, res.Lines), pct(res.BaselineExact, res.Lines),
			pct(res.LinePrefix, res.Lines), pct(res.LineEmpty, res.Lines))
	}
}
