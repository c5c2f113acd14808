package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is a process the benchmark started, in its own process group so that whatever it spawns
// ends with it. Its standard error goes to a file.
type Proc struct {
	Name   string
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
	stderr *os.File
}

// StartProc starts name with args and env (added to the environment), stderr to stderrPath.
// stdin and stdout are the caller's to wire (nil means none).
func StartProc(name string, args, env []string, stdin io.Reader, stdout io.Writer, stderrPath string) (*Proc, error) {
	f, err := os.Create(stderrPath)
	if err != nil {
		return nil, fmt.Errorf("creating the stderr file: %w", err)
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Proc{Name: name, cmd: cmd, exited: make(chan struct{}), stderr: f}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.exited)
	}()
	return p, nil
}

// PID returns the process id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Exited is closed when the process has ended.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Stop asks the process group to end (SIGTERM), waits up to grace, then kills the group, and waits
// for the process. It is safe to call more than once.
func (p *Proc) Stop(grace time.Duration) error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.exited
	}
	// Children that outlived the leader (node's workers, say) go with the group.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	return nil
}

// WaitExit waits up to d for the process to end by itself.
func (p *Proc) WaitExit(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.exited:
		return true
	case <-t.C:
		return false
	}
}

// FirstLine starts reading r and returns its first line, then keeps draining r in a goroutine
// added to wg (so the writer never blocks) until r ends.
func FirstLine(ctx context.Context, r io.Reader, wg *sync.WaitGroup) (string, error) {
	lines := make(chan string, 1)
	wg.Go(func() {
		br := bufio.NewReader(r)
		line, err := br.ReadString('\n')
		if err == nil || line != "" {
			lines <- strings.TrimSpace(line)
		}
		close(lines)
		_, _ = io.Copy(io.Discard, br)
	})
	select {
	case l, ok := <-lines:
		if !ok {
			return "", errors.New("output ended before its first line")
		}
		return l, nil
	case <-ctx.Done():
		return "", fmt.Errorf("waiting for the first line: %w", ctx.Err())
	}
}

// Memory is a process's resident memory as /proc/PID/status reports it.
type Memory struct {
	RSS int64 // VmRSS, bytes
	HWM int64 // VmHWM, the peak RSS, bytes
}

// ReadMemory reads VmRSS and VmHWM of pid.
func ReadMemory(pid int) (Memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, fmt.Errorf("reading process status: %w", err)
	}
	return parseStatus(b)
}

func parseStatus(b []byte) (Memory, error) {
	var m Memory
	var seen int
	for line := range bytes.Lines(b) {
		var dst *int64
		switch {
		case bytes.HasPrefix(line, []byte("VmRSS:")):
			dst = &m.RSS
		case bytes.HasPrefix(line, []byte("VmHWM:")):
			dst = &m.HWM
		default:
			continue
		}
		f := strings.Fields(string(line))
		if len(f) != 3 || f[2] != "kB" {
			return Memory{}, fmt.Errorf("unexpected status line %q", strings.TrimSpace(string(line)))
		}
		kb, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("status line %q: %w", strings.TrimSpace(string(line)), err)
		}
		*dst = kb << 10
		seen++
	}
	if seen != 2 {
		return Memory{}, errors.New("status has no VmRSS or VmHWM")
	}
	return m, nil
}

// MiB formats bytes in mebibytes.
func MiB(n int64) string { return fmt.Sprintf("%.1f", float64(n)/(1<<20)) }

// GroupMemory sums VmRSS over pid and all its descendants (node may run helpers).
func GroupMemory(pid int) (Memory, error) {
	total, err := ReadMemory(pid)
	if err != nil {
		return Memory{}, err
	}
	for _, c := range children(pid) {
		m, err := GroupMemory(c)
		if err != nil {
			continue // the child ended meanwhile
		}
		total.RSS += m.RSS
		total.HWM += m.HWM
	}
	return total, nil
}

func children(pid int) []int {
	var out []int
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name()))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// Sched is scheduler time a process spent, summed over its threads (/proc/PID/task/*/schedstat).
type Sched struct {
	OnCPU time.Duration // running
	Wait  time.Duration // runnable, waiting for a CPU
}

// Sub returns s - o.
func (s Sched) Sub(o Sched) Sched { return Sched{OnCPU: s.OnCPU - o.OnCPU, Wait: s.Wait - o.Wait} }

// Add returns s + o.
func (s Sched) Add(o Sched) Sched { return Sched{OnCPU: s.OnCPU + o.OnCPU, Wait: s.Wait + o.Wait} }

// ReadSched sums the schedstat of pid's threads. Threads that ended are not counted, so a
// difference is a lower bound if the process ends threads; Go runtimes and node rarely do.
func ReadSched(pid int) (Sched, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return Sched{}, fmt.Errorf("reading threads: %w", err)
	}
	var s Sched
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue // the thread ended
		}
		one, err := parseSchedstat(b)
		if err != nil {
			return Sched{}, err
		}
		s = s.Add(one)
	}
	return s, nil
}

func parseSchedstat(b []byte) (Sched, error) {
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return Sched{}, fmt.Errorf("unexpected schedstat %q", strings.TrimSpace(string(b)))
	}
	run, err1 := strconv.ParseInt(f[0], 10, 64)
	wait, err2 := strconv.ParseInt(f[1], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return Sched{}, fmt.Errorf("schedstat: %w", err)
	}
	return Sched{OnCPU: time.Duration(run), Wait: time.Duration(wait)}, nil
}
