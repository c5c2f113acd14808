// Command codingplan-accounts is codingplan's account plane: accounts, sign-in, API keys,
// billing webhooks, and the token endpoints with their signing keys (the tokens package). It owns the account
// database; the routing plane (codingplan-backend) never opens it.
//
//	codingplan-accounts serve [flags]        run the service (see docs/accounts.md)
//	codingplan-accounts migrate              apply the database migrations
//	codingplan-accounts account ...          create, list, show, set-plan, suspend, resume, delete
//	codingplan-accounts key ...              create, list, revoke API keys
//	codingplan-accounts signin ...           list, revoke editor sign-ins
//	codingplan-accounts keys ...             rotate, list the token signing keys
//	codingplan-accounts version
//
// Exit status: 0 success, 1 failure, 2 usage error.
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
	// After the first signal starts the shutdown, a second one kills the process at once.
	context.AfterFunc(ctx, stop)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "codingplan-accounts:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "codingplan-accounts:", err)
		os.Exit(1)
	}
}
