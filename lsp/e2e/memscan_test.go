package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The memory canary tests' instruments: binaries built as they ship (no race detector, whose
// shadow memory would dwarf the process's own), and a search of a process's whole writable
// address space through /proc/PID/maps and /proc/PID/mem.

var plain struct {
	once sync.Once
	dir  string
	err  error
}

// plainBinaries builds codingplan-backend and codingplan-lsp without the race detector, once
// per test run, and returns their paths.
func plainBinaries(t *testing.T) (backend, lsp string) {
	t.Helper()
	plain.once.Do(func() {
		plain.dir = filepath.Join(binDir, "plain")
		root, err := repoRoot()
		if err != nil {
			plain.err = err
			return
		}
		cmd := exec.Command("go", "build", "-o", plain.dir+"/", "./lsp/cmd/codingplan-lsp", "./backend/cmd/codingplan-backend")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOEXPERIMENT=runtimesecret")
		if out, err := cmd.CombinedOutput(); err != nil {
			plain.err = fmt.Errorf("building the binaries without -race: %v\n%s", err, out)
		}
	})
	if plain.err != nil {
		t.Fatal(plain.err)
	}
	return filepath.Join(plain.dir, "codingplan-backend"), filepath.Join(plain.dir, "codingplan-lsp")
}

// needRoot skips a test that reads the memory of the non-dumpable binaries: only a process
// with CAP_SYS_PTRACE may (CI runs as root).
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("reading a non-dumpable process's memory needs root (CAP_SYS_PTRACE); CI runs as root")
	}
}

// mapping is one line of /proc/PID/maps.
type mapping struct {
	start, end uint64
	perms      string
	name       string // the file, [heap], [stack], or empty for anonymous memory
}

func (m mapping) String() string {
	name := m.name
	if name == "" {
		name = "anonymous"
	}
	return fmt.Sprintf("%x-%x %s %s (%d KiB)", m.start, m.end, m.perms, name, (m.end-m.start)>>10)
}

// writableMappings lists the mappings of pid that are readable and writable: everywhere a
// running program can have put data (code and read-only data cannot hold a request).
func writableMappings(pid int) ([]mapping, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []mapping
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 || !strings.HasPrefix(fields[1], "rw") {
			continue
		}
		from, to, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(from, 16, 64)
		end, err2 := strconv.ParseUint(to, 16, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		m := mapping{start: start, end: end, perms: fields[1]}
		if len(fields) >= 6 {
			m.name = strings.Join(fields[5:], " ")
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

// memHit is one copy of a canary found in a process's memory.
type memHit struct {
	label   string
	addr    uint64
	where   mapping
	context string
}

func (h memHit) String() string {
	return fmt.Sprintf("%q at %#x in %v, near %q", h.label, h.addr, h.where, h.context)
}

// memReport is what one scan found.
type memReport struct {
	counts  map[string]int // copies per canary label
	hits    []memHit       // the first few copies of each canary
	scanned uint64         // bytes read
	regions int
	took    time.Duration
}

// total is the copies of all canaries.
func (r memReport) total() int {
	n := 0
	for _, c := range r.counts {
		n += c
	}
	return n
}

// summary names each canary's count and where the copies are, by mapping.
func (r memReport) summary() string {
	labels := make([]string, 0, len(r.counts))
	for l := range r.counts {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	var b strings.Builder
	for _, l := range labels {
		fmt.Fprintf(&b, "%s: %d; ", l, r.counts[l])
	}
	fmt.Fprintf(&b, "(%d MiB in %d mappings, %v)", r.scanned>>20, r.regions, r.took.Round(time.Millisecond))
	for _, h := range r.hits {
		b.WriteString("\n    ")
		b.WriteString(h.String())
	}
	return b.String()
}

// hitsPerCanary bounds the copies a report describes one by one.
const hitsPerCanary = 6

// scanMemory counts the copies of each canary's random part (so that a copy is found
// whatever prefix or quoting surrounds it) in every writable mapping of pid.
func scanMemory(t *testing.T, pid int, cs []canary) memReport {
	t.Helper()
	start := time.Now()
	maps, err := writableMappings(pid)
	if err != nil {
		t.Fatalf("reading the memory map of %d: %v", pid, err)
	}
	mem, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
	if err != nil {
		t.Fatalf("opening the memory of %d: %v", pid, err)
	}
	defer mem.Close()
	r := memReport{counts: map[string]int{}}
	for _, c := range cs {
		r.counts[c.label] = 0
	}
	const chunk = 4 << 20
	overlap := 0
	for _, c := range cs {
		overlap = max(overlap, len(c.value))
	}
	buf := make([]byte, chunk+overlap)
	for _, m := range maps {
		r.regions++
		for off := m.start; off < m.end; off += chunk {
			n := min(uint64(len(buf)), m.end-off)
			got, err := mem.ReadAt(buf[:n], int64(off))
			if err != nil && got == 0 {
				continue // a guard page or a mapping that went away meanwhile
			}
			r.scanned += uint64(min(got, chunk))
			data := buf[:got]
			for _, c := range cs {
				needle := []byte(c.value[len("CANARY"):])
				for i := 0; ; {
					j := bytes.Index(data[i:], needle)
					// A copy that starts in the overlap is counted with the next chunk.
					if j < 0 || i+j >= chunk {
						break
					}
					at := i + j
					if r.counts[c.label] < hitsPerCanary {
						r.hits = append(r.hits, memHit{label: c.label, addr: off + uint64(at), where: m,
							context: printable(data[max(0, at-120):min(len(data), at+len(needle)+60)])})
					}
					r.counts[c.label]++
					i = at + len(needle)
				}
			}
		}
	}
	clear(buf)
	r.took = time.Since(start)
	return r
}

// printable keeps an excerpt of memory readable in a test log.
func printable(b []byte) string {
	out := make([]byte, len(b))
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			c = '.'
		}
		out[i] = c
	}
	return string(out)
}

// pollMemory scans pid until no canary is left or until the deadline, and returns the last
// report. The scan itself is the condition waited on: no sleep decides the outcome.
func pollMemory(ctx context.Context, t *testing.T, pid int, cs []canary, until time.Time) memReport {
	t.Helper()
	for {
		r := scanMemory(t, pid, cs)
		if r.total() == 0 || !time.Now().Before(until) || ctx.Err() != nil {
			return r
		}
	}
}

// TestScanMemory checks the scan on the test's own process: a canary it holds is found, and
// the scan counts each copy once.
func TestScanMemory(t *testing.T) {
	if _, err := os.Stat("/proc/self/mem"); err != nil {
		t.Skip("no /proc")
	}
	c, gone := newCanary("held"), newCanary("never written")
	held := [][]byte{[]byte("x" + c.value), []byte(c.value + c.value)} // 3 copies
	r := scanMemory(t, os.Getpid(), []canary{c, gone})
	// c.value itself is a fourth copy; the scan's own needles may add more.
	if r.counts[c.label] < 4 {
		t.Errorf("found %d copies of a canary held at least 4 times: %s", r.counts[c.label], r.summary())
	}
	for _, b := range held {
		clear(b)
	}
}
