//go:build !linux

package upstream

import (
	"errors"
	"syscall"
)

func setLowWater(syscall.RawConn, int) error { return errors.ErrUnsupported }
