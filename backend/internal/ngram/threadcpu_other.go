//go:build !linux

package ngram

import "time"

// threadCPU is 0 where the thread's CPU time is not at hand.
func threadCPU() time.Duration { return 0 }
