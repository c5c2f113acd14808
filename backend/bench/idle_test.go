package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	wire "github.com/codingplan/codingplan/shared"
)

// Idle connections: editors keep their websocket open all day, so most of a node's connections
// send nothing for minutes. measureIdle opens n authenticated websockets that only answer pings
// (one user each, as n editors), holds them, and reads the server's RSS (/proc/PID/status) and
// CPU time (/proc/PID/stat) meanwhile; then, with all of them still open, it times fresh
// connections (dial to hello) and their first token. (Not the heap allocations: the runtime
// publishes its count late, so the opening's allocations would show as the hold's.) The floor is a bare gorilla/websocket echo server
// (this test binary run with floorEnv set), measured the same way in the same run.
//
// BenchmarkIdle (scripts/bench-idle.sh: 10,000 connections for 60 s) reports the figures;
// TestIdleConnections (1,000 for 10 s, in make test) fails when they pass the bounds below.

// The bounds TestIdleConnections holds the backend to, set from the figures of 2026-12-07 (see
// docs/benchmarks.md, "Idle connections"): 16.2-17.7 KB per connection at 1,000 (14.5 at
// 10,000; 41-50 before) and 0-0.2 KB per connection of growth over 10 s of pings every second
// (5.0 before, when each connection's writer goroutine kept its grown stack). They leave room
// for noise, not for those regressions.
const (
	maxKBPerConn   = 24.0
	maxGrowthKB    = 1.5 // per connection, from the start of the hold to its end
	floorEnv       = "CODINGPLAN_BENCH_FLOOR"
	sampleEvery    = 5 * time.Second
	settleTime     = 3 * time.Second
	probes         = 20 // fresh connections timed after the idle hold, the idle ones still open
	dialers        = 32
	idleReadBuffer = 512
)

// idleReport is what measureIdle saw.
type idleReport struct {
	conns      int
	base       int64         // RSS before the connections, bytes
	opened     int64         // RSS right after the last one opened
	held       int64         // RSS at the start of the hold, settleTime later
	end        int64         // RSS at the end of the hold
	samples    []int64       // RSS every sample during the hold
	cpu        time.Duration // CPU time over the hold
	hold       time.Duration
	open       time.Duration // opening them all
	hello, tok pcts          // fresh connections after the hold: dial to hello, request to first delta
}

func (r idleReport) kbPerConn() float64 { return float64(r.end-r.base) / 1000 / float64(r.conns) }
func (r idleReport) growthKB() float64  { return float64(r.end-r.held) / 1000 / float64(r.conns) }
func (r idleReport) cpuShare() float64  { return float64(r.cpu) / float64(r.hold) }

func (r idleReport) String() string {
	var mb []string
	for _, s := range r.samples {
		mb = append(mb, strconv.FormatFloat(float64(s)/1e6, 'f', 1, 64))
	}
	return fmt.Sprintf("%d connections opened in %v: RSS %.1f MB before, %.1f MB open, %.1f MB %v later, %.1f MB after %v idle "+
		"(%.2f KB per connection, growth %.3f KB per connection); idle CPU %.2f%% of a core; RSS MB every %v: %s",
		r.conns, r.open.Round(time.Millisecond), float64(r.base)/1e6, float64(r.opened)/1e6, float64(r.held)/1e6, settleTime, float64(r.end)/1e6,
		r.hold, r.kbPerConn(), r.growthKB(), 100*r.cpuShare(), sampleEvery, strings.Join(mb, " "))
}

// idleTarget is a server under measurement.
type idleTarget struct {
	pid    int
	url    string
	header func(i int) http.Header // the upgrade request's headers for connection i
	hello  bool                    // the server sends a hello frame first
	probe  func(ctx context.Context) (hello, tok time.Duration, err error)
}

func measureIdle(tb testing.TB, t idleTarget, n int, hold time.Duration) idleReport {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rep := idleReport{conns: n, hold: hold}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < uint64(n+100) {
		tb.Fatalf("%d connections need %d file descriptors, and this process may open %d: raise ulimit -n (hard limit %d)",
			n, n+100, lim.Cur, lim.Max)
	}
	// Warm up: the code paths and pools one connection uses are not a cost per connection.
	if t.probe != nil {
		for range 3 {
			if _, _, err := t.probe(ctx); err != nil {
				tb.Fatal(err)
			}
		}
	}
	rep.base = rss(tb, t.pid)
	start := time.Now()
	var lost atomic.Int64 // connections that closed
	conns, err := openIdle(ctx, t, n, &lost)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if err != nil {
		tb.Fatal(err)
	}
	rep.open = time.Since(start)
	rep.opened = rss(tb, t.pid)
	// The hold starts once the opening has settled: the collection the opening set off and the
	// writers of the hello frames end within a second or two.
	settle := time.NewTimer(settleTime)
	<-settle.C
	rep.held = rss(tb, t.pid)
	rep.samples = append(rep.samples, rep.held)
	cpu0 := cpuTime(tb, t.pid)
	// Idle: nothing but the server's keepalive pings and their pongs.
	tick := time.NewTicker(sampleEvery)
	defer tick.Stop()
	end := time.After(hold)
	for held := true; held; {
		select {
		case <-tick.C:
			rep.samples = append(rep.samples, rss(tb, t.pid))
		case <-end:
			held = false
		}
	}
	if k := lost.Load(); k > 0 {
		tb.Fatalf("%d of %d idle connections were closed during the hold", k, n)
	}
	rep.cpu = cpuTime(tb, t.pid) - cpu0
	rep.end = rss(tb, t.pid)
	rep.samples = append(rep.samples, rep.end)
	// Then, with all of them still open, fresh connections and their first token.
	if t.probe != nil {
		var hellos, toks []time.Duration
		for range probes {
			h, tok, err := t.probe(ctx)
			if err != nil {
				tb.Fatalf("a fresh connection while %d were idle: %v", n, err)
			}
			hellos, toks = append(hellos, h), append(toks, tok)
		}
		rep.hello, rep.tok = percentiles(hellos), percentiles(toks)
	}
	return rep
}

// openIdle opens n connections to t, each answering pings on a goroutine of its own until
// closed; it waits for every hello.
func openIdle(ctx context.Context, t idleTarget, n int, lost *atomic.Int64) ([]*websocket.Conn, error) {
	conns := make([]*websocket.Conn, n)
	errs := make([]error, dialers)
	var wg sync.WaitGroup
	d := websocket.Dialer{Subprotocols: []string{wire.Subprotocol}, HandshakeTimeout: 30 * time.Second,
		ReadBufferSize: idleReadBuffer, WriteBufferSize: idleReadBuffer}
	for w := range dialers {
		wg.Go(func() {
			for i := w; i < n; i += dialers {
				c, resp, err := d.DialContext(ctx, t.url, t.header(i))
				if err != nil {
					errs[w] = fmt.Errorf("connection %d: %w%s", i, err, respText(resp))
					return
				}
				conns[i] = c
				if t.hello {
					if _, _, err := c.ReadMessage(); err != nil {
						errs[w] = fmt.Errorf("connection %d: reading hello: %w", i, err)
						return
					}
				}
				go drain(c, lost) // answers pings (gorilla's default handler) until the connection closes
			}
		})
	}
	wg.Wait()
	live := conns[:0]
	for _, c := range conns {
		if c != nil {
			live = append(live, c)
		}
	}
	return live, errors.Join(errs...)
}

func drain(c *websocket.Conn, lost *atomic.Int64) {
	for {
		if _, _, err := c.NextReader(); err != nil {
			lost.Add(1)
			return
		}
	}
}

func respText(resp *http.Response) string {
	if resp == nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return fmt.Sprintf(" (HTTP %d %s)", resp.StatusCode, strings.TrimSpace(string(b)))
}

// rss returns a process's resident set, in bytes.
func rss(tb testing.TB, pid int) int64 {
	tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return kb << 10
		}
	}
	tb.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

func cpuTime(tb testing.TB, pid int) time.Duration {
	tb.Helper()
	d, err := procCPU(pid)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// backendTarget is the rig's backend with a fresh user per connection.
func backendTarget(tb testing.TB, r *rig) idleTarget {
	tb.Helper()
	user := "idle-" + randHex(4)
	be := r.backends[0] // the tree's build
	return idleTarget{
		pid: be.cmd.Process.Pid, url: be.wsURL, hello: true,
		header: func(i int) http.Header {
			tok, err := r.key.Mint(user+"-"+strconv.Itoa(i), "bench", time.Now(), 2*time.Hour)
			if err != nil {
				panic(err)
			}
			return http.Header{"Authorization": {"Bearer " + tok}}
		},
		probe: func(ctx context.Context) (time.Duration, time.Duration, error) {
			start := time.Now()
			c, err := dialRelay(ctx, r, be, "")
			if err != nil {
				return 0, 0, err
			}
			defer c.conn.Close()
			hello := time.Since(start)
			tok, _, err := c.stream(codePrefix(shortPrefixBytes))
			return hello, tok, err
		},
	}
}

// startFloor runs this test binary as the floor server and returns it as a target.
func startFloor(tb testing.TB) idleTarget {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), floorEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	in, err := cmd.StdinPipe() // the floor exits when its stdin closes
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		in.Close()
		_ = cmd.Wait()
	})
	var line [128]byte
	k, err := out.Read(line[:])
	if err != nil {
		tb.Fatalf("the floor server printed no address: %v", err)
	}
	return idleTarget{pid: cmd.Process.Pid, url: "ws://" + strings.TrimSpace(string(line[:k])),
		header: func(int) http.Header { return nil }}
}

// serveFloor is the floor: gorilla/websocket's echo example, its defaults, the read loop on
// the handler's goroutine. It serves until stdin closes.
func serveFloor() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr())
	up := websocket.Upgrader{Subprotocols: []string{wire.Subprotocol}}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, p, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, p); err != nil {
				return
			}
		}
	}))
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// idleConns and idleHold size BenchmarkIdle (IDLE_CONNS, IDLE_HOLD).
func idleSize(tb testing.TB, conns int, hold time.Duration) (int, time.Duration) {
	if v := os.Getenv("IDLE_CONNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			tb.Fatalf("IDLE_CONNS: %v", err)
		}
		conns = n
	}
	if v := os.Getenv("IDLE_HOLD"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			tb.Fatalf("IDLE_HOLD: %v", err)
		}
		hold = d
	}
	return conns, hold
}

// BenchmarkIdle holds IDLE_CONNS (10,000) idle connections for IDLE_HOLD (60 s) on the floor and
// on the backend, one after the other. Run it with -benchtime 1x.
func BenchmarkIdle(b *testing.B) {
	n, hold := idleSize(b, 10_000, 60*time.Second)
	r := getRig(b)
	for b.Loop() {
		floor := measureIdle(b, startFloor(b), n, hold)
		b.Logf("floor:   %v", floor)
		back := measureIdle(b, backendTarget(b, r), n, hold)
		b.Logf("backend: %v", back)
		b.Logf("backend, fresh connections meanwhile: dial to hello p50 %v p99 %v, first token p50 %v p99 %v",
			back.hello.p50, back.hello.p99, back.tok.p50, back.tok.p99)
		b.ReportMetric(back.kbPerConn(), "KB/conn")
		b.ReportMetric(floor.kbPerConn(), "floor-KB/conn")
		b.ReportMetric(back.growthKB(), "growth-KB/conn")
		b.ReportMetric(floor.growthKB(), "floor-growth-KB/conn")
		b.ReportMetric(100*back.cpuShare(), "idle-cpu-%")
		b.ReportMetric(100*floor.cpuShare(), "floor-idle-cpu-%")
		b.ReportMetric(float64(back.hello.p50.Microseconds())/1000, "hello-p50-ms")
		b.ReportMetric(float64(back.tok.p50.Microseconds())/1000, "ttft-p50-ms")
	}
}

// TestIdleConnections holds 1,000 idle connections for 10 s and fails when the backend's RSS per
// connection, or its growth while they are idle, passes the bounds above.
func TestIdleConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("holds connections for 10 s")
	}
	n, hold := idleSize(t, 1000, 10*time.Second)
	// Pings every second, so that the hold sees ten rounds of them (the default is 20 s).
	rigConfig = "ping_interval = \"1s\"\n"
	r := getRig(t)
	rep := measureIdle(t, backendTarget(t, r), n, hold)
	t.Logf("backend: %v", rep)
	if got := rep.kbPerConn(); got > maxKBPerConn {
		t.Errorf("RSS per idle connection %.2f KB, want at most %.1f KB", got, maxKBPerConn)
	}
	if got := rep.growthKB(); got > maxGrowthKB {
		t.Errorf("RSS grew %.3f KB per connection in %v idle, want at most %.1f KB", got, hold, maxGrowthKB)
	}
}
