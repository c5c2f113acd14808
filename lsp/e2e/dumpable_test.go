//go:build linux

package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// dumpable reports whether process pid is dumpable (PR_SET_DUMPABLE not 0), seen from
// outside and whatever user the test runs as, root included. The kernel lets a process attach
// to another of the same user (PTRACE_SEIZE) only when that one is dumpable, unless the caller
// has CAP_SYS_PTRACE in effect, which a root test process has. So the attach is tried from a
// thread whose effective capabilities lack CAP_SYS_PTRACE (capabilities are per thread; the
// thread is thrown away afterwards). When it succeeds, the target is stopped and detached at
// once.
func dumpable(pid int) (bool, error) {
	type result struct {
		ok  bool
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// Never unlocked: the thread, its capabilities changed, ends with this goroutine.
		runtime.LockOSThread()
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			ch <- result{err: fmt.Errorf("capget: %w", err)}
			return
		}
		data[unix.CAP_SYS_PTRACE/32].Effective &^= 1 << (unix.CAP_SYS_PTRACE % 32)
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			ch <- result{err: fmt.Errorf("capset: %w", err)}
			return
		}
		if err := ptrace(unix.PTRACE_SEIZE, pid, 0); err != nil {
			if errors.Is(err, unix.EPERM) {
				ch <- result{ok: false}
			} else {
				ch <- result{err: fmt.Errorf("PTRACE_SEIZE: %w", err)}
			}
			return
		}
		ch <- result{ok: true, err: release(pid)}
	}()
	r := <-ch
	return r.ok, r.err
}

// release detaches from a seized tracee: a detach needs it stopped, so it is interrupted
// first; a signal it stopped for instead is handed back with the detach.
func release(pid int) error {
	if err := ptrace(unix.PTRACE_INTERRUPT, pid, 0); err != nil {
		return fmt.Errorf("PTRACE_INTERRUPT: %w", err)
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, unix.WALL, nil); err != nil {
		return fmt.Errorf("wait for the tracee: %w", err)
	}
	sig := 0
	if ws.Stopped() && ws.StopSignal() != unix.SIGTRAP {
		sig = int(ws.StopSignal())
	}
	if err := ptrace(unix.PTRACE_DETACH, pid, sig); err != nil {
		return fmt.Errorf("PTRACE_DETACH: %w", err)
	}
	return nil
}

func ptrace(req, pid, data int) error {
	if _, _, e := unix.RawSyscall6(unix.SYS_PTRACE, uintptr(req), uintptr(pid), 0, uintptr(data), 0, 0); e != 0 {
		return e
	}
	return nil
}

// TestDumpableCheck is the control of dumpable: a process that did not make itself undumpable
// (sleep) is seen as dumpable, and one that did is not, so the check can both pass and fail.
func TestDumpableCheck(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skipf("no sleep to compare with: %v", err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	ok, err := dumpable(cmd.Process.Pid)
	if err != nil || !ok {
		t.Errorf("sleep (pid %d): dumpable = %v, %v; want true", cmd.Process.Pid, ok, err)
	}
	// Still running, and no longer traced.
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil || !strings.Contains(string(status), "TracerPid:\t0\n") {
		t.Errorf("sleep after the check: %v\n%s", err, status)
	}

	// A process that made itself undumpable: the test binary again, run as a helper.
	helper := exec.Command(os.Args[0], "-test.run=^TestUndumpableHelper$")
	helper.Env = append(os.Environ(), "CODINGPLAN_UNDUMPABLE_HELPER=1")
	stdout, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := helper.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		_ = helper.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "undumpable\n" {
		t.Fatalf("helper: %q %v", line, err)
	}
	if ok, err := dumpable(helper.Process.Pid); err != nil || ok {
		t.Errorf("undumpable helper: dumpable = %v, %v; want false", ok, err)
	}
}

// TestUndumpableHelper is the undumpable process of TestDumpableCheck: it sets
// PR_SET_DUMPABLE 0, says so, and waits for its stdin to close.
func TestUndumpableHelper(t *testing.T) {
	if os.Getenv("CODINGPLAN_UNDUMPABLE_HELPER") == "" {
		t.Skip("run by TestDumpableCheck")
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	fmt.Println("undumpable")
	_, _ = io.Copy(io.Discard, os.Stdin)
}
