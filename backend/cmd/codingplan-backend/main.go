// Command codingplan-backend is codingplan's websocket service: it authenticates editors'
// connections, admits model streams under each plan's concurrency limit and relays model output.
//
//	codingplan-backend serve [flags]      run the service (see docs/configuration.md)
//	codingplan-backend token --sub U --plan P [--ttl 24h]
//	codingplan-backend usage --user U [--day YYYY-MM-DD] --valkey ADDR
//	codingplan-backend version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal starts the drain, a second one kills the process at once.
	context.AfterFunc(ctx, stop)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "codingplan-backend:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "codingplan-backend:", err)
		os.Exit(1)
	}
}
