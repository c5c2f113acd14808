//go:build unix

package ngram

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time this process used so far, so benchmarks can
// report it beside wall time on a busy machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
