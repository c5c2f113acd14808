package e2e

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the cancellation table in docs/benchmarks.md from this run of TestCancelStopsUpstream")

// cancelTarget is the cancellation latency docs/benchmarks.md promises, per median.
const cancelTarget = 100 * time.Millisecond

// The cancellation table in docs/benchmarks.md sits between these markers; TestCancelStopsUpstream
// -update writes it, nobody types it.
const (
	cancelTableStart = "<!-- cancellation table: written by TestCancelStopsUpstream -update -->"
	cancelTableEnd   = "<!-- end of cancellation table -->"
	cancelTableHead  = "| run | cancel -> provider request ended | cancel -> lease count 0 in Valkey |\n| --- | --: | --: |\n"
)

// cancelRowRE matches a row cancelRow writes.
var cancelRowRE = regexp.MustCompile(`^\| \d{4}-\d\d-\d\d, \d+ CPU, load [\d.]+, \d+ rounds \| ([\d.]+) ms median \([\d.]+-[\d.]+\) \| ([\d.]+) ms median \([\d.]+-[\d.]+\) \|$`)

// cancelRow is the table row of one run: the date, the machine, and the median, least and most
// of each delay.
func cancelRow(now time.Time, toProvider, toRelease []time.Duration) string {
	return fmt.Sprintf("| %s, %d CPU, load %s, %d rounds | %s | %s |", now.UTC().Format(time.DateOnly), runtime.NumCPU(),
		loadAverage(), len(toProvider), delays(toProvider), delays(toRelease))
}

func delays(ds []time.Duration) string {
	ms := func(d time.Duration) string {
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64)
	}
	return fmt.Sprintf("%s ms median (%s-%s)", ms(median(ds)), ms(slices.Min(ds)), ms(slices.Max(ds)))
}

// loadAverage is the one-minute load average, or 0 where /proc/loadavg is missing.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "0"
}

func benchmarksDoc() (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "docs", "benchmarks.md"), nil
}

// cancelTable splits docs/benchmarks.md around the cancellation table.
func cancelTable(doc []byte) (before, table, after []byte, err error) {
	i := bytes.Index(doc, []byte(cancelTableStart+"\n"))
	j := bytes.Index(doc, []byte(cancelTableEnd))
	if i < 0 || j < i {
		return nil, nil, nil, errors.New("docs/benchmarks.md: no cancellation table markers")
	}
	i += len(cancelTableStart) + 1
	return doc[:i], doc[i:j], doc[j:], nil
}

// writeCancelTable makes row the table's only row.
func writeCancelTable(row string) error {
	path, err := benchmarksDoc()
	if err != nil {
		return err
	}
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	before, _, after, err := cancelTable(doc)
	if err != nil {
		return err
	}
	out := slices.Concat(before, []byte(cancelTableHead+row+"\n"), after)
	return os.WriteFile(path, out, 0o644)
}

// TestCancelTable checks the cancellation table in docs/benchmarks.md is one that
// TestCancelStopsUpstream -update wrote: its header, rows in cancelRow's format, medians under
// the target.
func TestCancelTable(t *testing.T) {
	path, err := benchmarksDoc()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, table, _, err := cancelTable(doc)
	if err != nil {
		t.Fatal(err)
	}
	rows, ok := strings.CutPrefix(string(table), cancelTableHead)
	if !ok {
		t.Fatalf("the table does not start with the generated header:\n%s", table)
	}
	lines := strings.Split(strings.TrimSuffix(rows, "\n"), "\n")
	if len(lines) == 0 || lines[0] == "" {
		t.Fatal("the table has no rows; run TestCancelStopsUpstream -update")
	}
	for _, line := range lines {
		m := cancelRowRE.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("row not written by TestCancelStopsUpstream -update: %q", line)
			continue
		}
		for _, v := range m[1:] {
			if f, _ := strconv.ParseFloat(v, 64); time.Duration(f*float64(time.Millisecond)) > cancelTarget {
				t.Errorf("row %q: a median over the %v target", line, cancelTarget)
			}
		}
	}
	// The generator's own output matches what this test accepts.
	sample := cancelRow(time.Now(), []time.Duration{time.Millisecond, 3 * time.Millisecond}, []time.Duration{2 * time.Millisecond})
	if !cancelRowRE.MatchString(sample) {
		t.Errorf("cancelRow writes %q, which the format check refuses", sample)
	}
}
