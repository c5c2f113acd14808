//go:build !linux

package e2e

import "errors"

// dumpable cannot be read from outside on this system.
func dumpable(int) (bool, error) { return false, errors.New("not supported on this system") }
