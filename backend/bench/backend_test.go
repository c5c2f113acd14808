package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// startBackend starts the backend binary bin with args and extra environment, adds it to the
// rig's backends and waits for its "listening" line. Its log goes to NAME-backend.log in the rig's directory.
func (r *rig) startBackend(name, bin string, args, env []string) (*backend, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := r.start(cmd, ""); err != nil {
		return nil, err
	}
	be := &backend{name: name, cmd: cmd, logDone: make(chan struct{})}
	r.backends = append(r.backends, be) // stop waits for its log
	// The "listening" line gives the address; the rest of the log goes to a file.
	logFile, err := os.Create(filepath.Join(r.dir, name+"-backend.log"))
	if err != nil {
		close(be.logDone)
		return nil, err
	}
	addr := make(chan string, 1)
	go func() { // ends with the backend's stderr; stop waits for it
		defer close(be.logDone)
		defer logFile.Close()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var l struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "listening" {
				addr <- l.Addr
			}
			logFile.Write(append(sc.Bytes(), '\n'))
		}
		close(addr)
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			return nil, fmt.Errorf("the %s backend exited; see %s", name, logFile.Name())
		}
		be.httpURL, be.wsURL = "http://"+a, "ws://"+a+"/v1/ws"
		return be, nil
	case <-time.After(60 * time.Second):
		return nil, fmt.Errorf("the %s backend did not start listening", name)
	}
}

// cpuTime returns the CPU time, user plus system, the backend process has used so far (all
// its threads, from /proc/PID/stat, in clock ticks of 10 ms).
func (be *backend) cpuTime() (time.Duration, error) { return procCPU(be.cmd.Process.Pid) }

// procCPU returns the CPU time, user plus system, process pid has used so far.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	const tick = 10 * time.Millisecond // sysconf(_SC_CLK_TCK) is 100 on Linux
	return time.Duration(utime+stime) * tick, nil
}

var switchesRE = regexp.MustCompile(`(?m)^(?:non)?voluntary_ctxt_switches:\s+([0-9]+)$`)

// switches returns the context switches of the backend's threads so far (/proc/PID/task/*/
// status): on a machine where a switch costs tens of microseconds they are most of a relay's
// CPU, and they vary less from run to run than the CPU time does.
func (be *backend) switches() (int64, error) {
	dir := fmt.Sprintf("/proc/%d/task", be.cmd.Process.Pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, t.Name(), "status"))
		if err != nil {
			continue // the thread exited
		}
		for _, m := range switchesRE.FindAllSubmatch(b, -1) {
			v, _ := strconv.ParseInt(string(m[1]), 10, 64)
			n += v
		}
	}
	return n, nil
}

var mallocsRE = regexp.MustCompile(`(?m)^go_memstats_mallocs_total ([0-9.e+]+)$`)

// mallocs returns the backend's heap allocations so far, from its /metrics.
func (be *backend) mallocs(ctx context.Context) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, be.httpURL+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	m := mallocsRE.FindSubmatch(body)
	if m == nil {
		return 0, errors.New("no go_memstats_mallocs_total in /metrics")
	}
	return strconv.ParseFloat(string(m[1]), 64)
}
