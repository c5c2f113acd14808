//go:build !unix

package main

import "errors"

func disableCoreDumps() error { return errors.New("not supported on this system") }
