package ngram

import "testing"

func BenchmarkProbe(b *testing.B) {
	m := goModel(b)
	for _, c := range []struct {
		p  string
		ml bool
	}{
		{"\tresp, err := ", false}, {"\tw.Header().Se", false}, {"\t", false}, {"\tif req.Name == \"\" ", true},
		{"\tif err != nil ", true}, {"\tfor i := ", false}, {"\tctx, cancel := ", false}, {"\tdefer ", false},
		{"\tw.WriteHeader(", false}, {"\tfmt.", false}, {"\tif len(req.Name) ", false}, {"\tswitch ", true},
		{"\tb, err := json.", false}, {"\treturn ", false}, {"\tvar buf ", false}, {"\tfor _, ", true},
	} {
		var out []byte
		st, _ := m.Complete(b.Context(), []byte(benchPrefix+c.p), []byte("\n}\n"), "go", 64, c.ml, func(p []byte) error { out = append(out, p...); return nil })
		b.Logf("%q -> %q %+v", c.p, out, st)
	}
}
