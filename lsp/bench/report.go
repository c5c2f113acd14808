package bench

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Targets the issue sets.
const (
	SpeedupTarget = 5.0      // our full chain's p50 at least this many times tabby-agent's
	MemoryTarget  = 30 << 20 // RSS with the documents open, bytes
)

// Machine describes where the run happened.
func Machine(node string) string {
	cpu := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	load := ""
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	kernel := ""
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	nodeVersion := "-"
	if out, err := exec.Command(node, "--version").Output(); err == nil {
		nodeVersion = strings.TrimSpace(string(out))
	}
	return fmt.Sprintf("%d CPUs (nproc), %s; Linux %s; %s; node %s; load average at start %s",
		runtime.NumCPU(), cpu, kernel, runtime.Version(), nodeVersion, load)
}

// Markdown renders the report: latency table, memory table, verdicts and problems.
func (r *Report) Markdown(machine, command string, when time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Run %s, %s in total. Machine: %s.\n\n", when.UTC().Format("2006-01-02 15:04 MST"), r.Elapsed.Round(time.Second), machine)
	fmt.Fprintf(&b, "Command: `%s`\n\n", command)
	fmt.Fprintf(&b, "%d rounds x %d iterations per target (each iteration: one request in a new context = miss, "+
		"then the same request again = hit), targets interleaved in a rotating order, after %d warm-up iterations. "+
		"Latency is from writing the request to stdin to reading the whole response from stdout. Times in ms.\n\n",
		r.Config.Rounds, r.Config.PerRound, r.Config.Warmup)

	var peerMiss, peerHit time.Duration
	for _, t := range r.Targets {
		if !t.ours() && peerMiss == 0 {
			peerMiss, peerHit = Summarize(t.Samples.Miss).P50, Summarize(t.Samples.Hit).P50
		}
	}
	b.WriteString("| server | request | context | n | p50 | p90 | p99 | mean | min | max | round p50s | peer p50 / this p50 | empty | errors | upstream calls (miss + hit) |\n")
	b.WriteString("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, t := range r.Targets {
		for _, row := range []struct {
			ctx      string
			samples  []time.Duration
			peer     time.Duration
			round    func(RoundP50) time.Duration
			upstream int64
		}{
			{"miss (new)", t.Samples.Miss, peerMiss, func(p RoundP50) time.Duration { return p.Miss }, t.Samples.UpstreamMis + t.Samples.UpstreamHit},
			{"hit (repeat)", t.Samples.Hit, peerHit, func(p RoundP50) time.Duration { return p.Hit }, -1},
		} {
			s := Summarize(row.samples)
			var rounds []time.Duration
			for _, p := range r.Rounds[t] {
				rounds = append(rounds, row.round(p))
			}
			rs := Summarize(rounds)
			upstream := "-"
			if t.Upstream != nil && row.upstream >= 0 {
				// One figure for the pair: codingplan's count comes from the provider's event
				// stream, read asynchronously, so a miss's call can land after the hit starts.
				upstream = fmt.Sprint(row.upstream)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %d | %s | %s | %s | %s | %s | %s | %s-%s | %s | %d | %d | %s |\n",
				t.Name, strings.TrimPrefix(t.Method, "textDocument/"), row.ctx, s.N,
				Ms(s.P50), Ms(s.P90), Ms(s.P99), Ms(s.Mean), Ms(s.Min), Ms(s.Max),
				Ms(rs.Min), Ms(rs.Max), Ratio(row.peer, s.P50), t.Samples.Empty, t.Samples.Errors, upstream)
		}
	}
	b.WriteString("\n")
	b.WriteString(r.verdicts(peerMiss))

	if len(r.Probes) > 0 {
		b.WriteString("\nWhere codingplan's miss time goes: each component measured on its own in the same rounds " +
			"(every call a new prompt, one call at a time, ms):\n\n")
		b.WriteString("| component | n | p50 | p90 | p99 | mean | errors |\n|---|--:|--:|--:|--:|--:|--:|\n")
		for _, p := range r.Probes {
			s := Summarize(p.Samples)
			fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %d |\n", p.Name, s.N, Ms(s.P50), Ms(s.P90), Ms(s.P99), Ms(s.Mean), p.Errors)
		}
		for _, t := range r.Targets {
			if t.ours() {
				s := Summarize(t.Samples.Miss)
				fmt.Fprintf(&b, "| full chain: %s %s miss | %d | %s | %s | %s | %s | %d |\n",
					strings.Replace(t.Name, "codingplan", "codingplan-lsp", 1), strings.TrimPrefix(t.Method, "textDocument/"), s.N, Ms(s.P50), Ms(s.P90), Ms(s.P99), Ms(s.Mean), t.Samples.Errors)
			}
		}
		b.WriteString(r.ownShare())
	}

	b.WriteString("\nScheduler time per iteration (one miss and one hit), from /proc/PID/task/*/schedstat: " +
		"on CPU, and runnable but waiting for a CPU (what a loaded machine adds), in ms:\n\n")
	b.WriteString("| server | request | process | on CPU | waiting for a CPU |\n|---|---|---|--:|--:|\n")
	for _, t := range r.Targets {
		if t.Samples.Iterations == 0 {
			continue
		}
		n := time.Duration(t.Samples.Iterations)
		for i, w := range t.Watch {
			if i >= len(t.Samples.Sched) {
				break
			}
			s := t.Samples.Sched[i]
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", t.Name, strings.TrimPrefix(t.Method, "textDocument/"), w.Name, Ms(s.OnCPU/n), Ms(s.Wait/n))
		}
	}

	b.WriteString("\nNotifications the servers sent during the measured iterations (per iteration):\n\n")
	for _, t := range r.Targets {
		if t.Samples.Iterations == 0 {
			continue
		}
		var parts []string
		for _, m := range slices.Sorted(maps.Keys(t.Samples.Notes)) {
			parts = append(parts, fmt.Sprintf("%s %.2f", m, float64(t.Samples.Notes[m])/float64(t.Samples.Iterations)))
		}
		if len(parts) == 0 {
			parts = []string{"none"}
		}
		fmt.Fprintf(&b, "- %s %s: %s\n", t.Name, strings.TrimPrefix(t.Method, "textDocument/"), strings.Join(parts, ", "))
	}

	if len(r.Memory) > 0 {
		b.WriteString("\nMemory (VmRSS / VmHWM from /proc/PID/status, process and children, MiB):\n\n")
		b.WriteString("| server | idle after initialize: RSS | HWM | after didOpen of docs: RSS | HWM | documents | total size (MiB) | open + first answer (ms) |\n")
		b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, m := range r.Memory {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %d | %s | %s |\n", m.Name, MiB(m.Idle.RSS), MiB(m.Idle.HWM),
				MiB(m.Loaded.RSS), MiB(m.Loaded.HWM), m.Docs, MiB(int64(m.DocBytes)), Ms(m.LoadedTime))
		}
	}
	if len(r.Problems) > 0 {
		b.WriteString("\nNot measured:\n\n")
		for _, p := range r.Problems {
			fmt.Fprintf(&b, "- %s\n", oneLine(p))
		}
	}
	return b.String()
}

// ownShare derives codingplan-lsp's own share of a miss from the same run: the full chain's miss
// p50, less the backend's round trip to done as a websocket client sees it, less one stdio hop
// to a Go language server that answers at once.
func (r *Report) ownShare() string {
	var ws, stdio *Probe
	for _, p := range r.Probes {
		switch {
		case p.Role == RoleBackend && ws == nil:
			ws = p
		case p.Role == RoleStdio && stdio == nil:
			stdio = p
		}
	}
	if ws == nil || stdio == nil || len(ws.Samples) == 0 || len(stdio.Samples) == 0 {
		return ""
	}
	wsP50, stdioP50 := Median(ws.Samples), Median(stdio.Samples)
	var b strings.Builder
	b.WriteString("\ncodingplan-lsp's own share of a miss: full chain miss p50 - websocket client to the backend's done p50 - bare stdio language server p50:\n\n")
	for _, t := range r.Targets {
		if !t.ours() || len(t.Samples.Miss) == 0 {
			continue
		}
		miss := Median(t.Samples.Miss)
		fmt.Fprintf(&b, "- %s %s: %s - %s - %s = %s ms\n", t.Name, strings.TrimPrefix(t.Method, "textDocument/"),
			Ms(miss), Ms(wsP50), Ms(stdioP50), Ms(miss-wsP50-stdioP50))
	}
	return b.String()
}

func (r *Report) verdicts(peerMiss time.Duration) string {
	var b strings.Builder
	for _, t := range r.Targets {
		if !t.ours() || peerMiss == 0 {
			continue
		}
		p50 := Summarize(t.Samples.Miss).P50
		if p50 == 0 {
			continue
		}
		x := float64(peerMiss) / float64(p50)
		verdict := "meets"
		if x < SpeedupTarget {
			verdict = "MISSES"
		}
		fmt.Fprintf(&b, "- %s %s, cache miss: p50 %s ms vs tabby-agent's %s ms = %.1fx faster: %s the %.0fx target.\n",
			t.Name, strings.TrimPrefix(t.Method, "textDocument/"), Ms(p50), Ms(peerMiss), x, verdict, SpeedupTarget)
	}
	for _, m := range r.Memory {
		if !strings.HasPrefix(m.Name, "codingplan") {
			continue
		}
		verdict := "meets"
		if m.Loaded.RSS > MemoryTarget {
			verdict = "MISSES"
		}
		fmt.Fprintf(&b, "- codingplan-lsp RSS with %d documents (%s MiB) open: %s MiB: %s the %d MiB target.\n",
			m.Docs, MiB(int64(m.DocBytes)), MiB(m.Loaded.RSS), verdict, MemoryTarget>>20)
	}
	return b.String()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// Markers around the generated part of the docs section.
const (
	BeginMarker = "<!-- bench-lsp:begin (generated by scripts/bench-lsp.sh) -->"
	EndMarker   = "<!-- bench-lsp:end -->"
)

// ErrNoSection is returned when the docs file has no generated section to replace.
var ErrNoSection = errors.New("no bench-lsp markers in the file")

// ReplaceSection puts body between the markers of file, leaving the rest of it untouched.
func ReplaceSection(doc []byte, body string) ([]byte, error) {
	begin := bytes.Index(doc, []byte(BeginMarker))
	end := bytes.Index(doc, []byte(EndMarker))
	if begin < 0 || end < begin {
		return nil, ErrNoSection
	}
	var out bytes.Buffer
	out.Write(doc[:begin+len(BeginMarker)])
	out.WriteString("\n")
	out.WriteString(strings.TrimSpace(body))
	out.WriteString("\n")
	out.Write(doc[end:])
	return out.Bytes(), nil
}
