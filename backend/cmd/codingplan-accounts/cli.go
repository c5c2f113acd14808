package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/codingplan/codingplan/backend/internal/accounts"
	"github.com/codingplan/codingplan/backend/internal/store"
	"github.com/codingplan/codingplan/backend/internal/tokens"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "0.1.0-dev"
}

// errUsage marks a command-line mistake (exit status 2).
var errUsage = errors.New("usage")

const usageText = `usage: codingplan-accounts <command> [flags]

commands:
  serve                                   run the service (settings: docs/accounts.md)
  migrate                                 apply the database migrations
  account create --email E --name N [--plan P] [--password-stdin]
  account list [--json]
  account show ID|EMAIL [--json]
  account set-plan ID PLAN                PLAN "none" removes the plan
  account suspend ID | account resume ID
  account delete ID                       with --valkey, its usage counts too
  account export ID|EMAIL                 every row about the account, as JSON
  key create ACCOUNT --name N [--json]    prints the new key once
  key list ACCOUNT [--json]
  key revoke ACCOUNT KEYID
  signin list ACCOUNT [--json]
  signin revoke ACCOUNT ID
  keys rotate                             add a signing key (it signs from 2m on)
  keys list [--json]                      the signing keys: kid, created, retired
  version

Every command also takes the settings flags (--config, --database, ...; see serve --help).
ACCOUNT is an account id or email. Exit status: 0 success, 1 failure, 2 usage error.
`

// run dispatches a subcommand. getenv reads the environment (os.Getenv in main).
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return fmt.Errorf("%w: no command", errUsage)
	}
	c := &cli{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return serve(ctx, rest, stdout, stderr, getenv)
	case "migrate":
		return c.migrate(rest)
	case "account":
		return c.sub("account", rest, map[string]func([]string) error{
			"create": c.accountCreate, "list": c.accountList, "show": c.accountShow, "set-plan": c.accountSetPlan,
			"suspend": c.accountSuspend, "resume": c.accountResume, "delete": c.accountDelete,
			"export": c.accountExport,
		})
	case "key":
		return c.sub("key", rest, map[string]func([]string) error{
			"create": c.keyCreate, "list": c.keyList, "revoke": c.keyRevoke,
		})
	case "keys":
		return c.sub("keys", rest, map[string]func([]string) error{
			"rotate": c.keysRotate, "list": c.keysList,
		})
	case "signin":
		return c.sub("signin", rest, map[string]func([]string) error{
			"list": c.signinList, "revoke": c.signinRevoke,
		})
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "codingplan-accounts", versionString())
		return nil
	case "help", "--help", "-help", "-h":
		fmt.Fprint(stdout, usageText)
		return nil
	default:
		fmt.Fprint(stderr, usageText)
		return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
	}
}

// cli holds what the admin commands share.
type cli struct {
	ctx            context.Context
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

func (c *cli) sub(group string, args []string, cmds map[string]func([]string) error) error {
	if len(args) == 0 {
		fmt.Fprint(c.stderr, usageText)
		return fmt.Errorf("%w: %s: no subcommand", errUsage, group)
	}
	f, ok := cmds[args[0]]
	if !ok {
		fmt.Fprint(c.stderr, usageText)
		return fmt.Errorf("%w: %s: unknown subcommand %q", errUsage, group, args[0])
	}
	return f(args[1:])
}

// parse registers the settings flags on fs, parses args (flags may follow the positional
// arguments), checks the number of positional arguments and loads the settings.
func parse(fs *flag.FlagSet, args []string, npos int, getenv func(string) string) (*accounts.Settings, []string, error) {
	loader := accounts.Register(fs)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, nil, err
			}
			return nil, nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != npos {
		return nil, nil, fmt.Errorf("%w: %s takes %d argument(s), got %d", errUsage, fs.Name(), npos, len(pos))
	}
	s, err := loader.Load(getenv)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	return s, pos, nil
}

// db is what the binary uses of a store.
type db interface {
	accounts.Store
	tokens.Store
	PruneRefresh(ctx context.Context, before time.Time) (int64, error)
	CreateAccount(ctx context.Context, a store.Account) (store.Account, error)
	ListAccounts(ctx context.Context) ([]store.Account, error)
	DeleteAccount(ctx context.Context, id string) error
	SetPassword(ctx context.Context, accountID, hash string) error
	Migrate(ctx context.Context) error
	DeleteExpired(ctx context.Context, now time.Time) (int64, error)
	PruneEvents(ctx context.Context, before time.Time) (int64, error)
	Close() error
}

// openDB opens the database the settings name (it does not migrate).
func openDB(ctx context.Context, s *accounts.Settings) (db, error) {
	kind, target, err := accounts.ParseDatabase(s.DatabaseURL())
	if err != nil {
		return nil, err
	}
	if kind == "sqlite" {
		if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
			return nil, fmt.Errorf("database directory: %w", err)
		}
		return store.OpenSQLite(ctx, target)
	}
	return store.OpenPostgres(ctx, target)
}

// withDB opens the database for one admin command, with a deadline. A SQLite file (one
// machine, as serve uses it) is migrated first; PostgreSQL must have been migrated by
// `codingplan-accounts migrate`, run once per release by the operator.
func (c *cli) withDB(s *accounts.Settings, f func(ctx context.Context, d db) error) error {
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	d, err := openDB(ctx, s)
	if err != nil {
		return err
	}
	defer d.Close()
	if kind, _, _ := accounts.ParseDatabase(s.DatabaseURL()); kind == "sqlite" {
		if err := d.Migrate(ctx); err != nil {
			return err
		}
	} else if v, err := d.Version(ctx); err != nil {
		return err
	} else if v == 0 {
		return errors.New("the database has no schema yet: run codingplan-accounts migrate")
	}
	return f(ctx, d)
}

// findAccount reads an account by id, or by email when ref has an @.
// onAccount runs a command whose first argument names an account (an id or an email): it
// parses args (npos arguments) with fs, opens the database and finds the account for f.
func (c *cli) onAccount(fs *flag.FlagSet, args []string, npos int, f func(ctx context.Context, s *accounts.Settings, d db, a store.Account, pos []string) error) error {
	s, pos, err := parse(fs, args, npos, c.getenv)
	if err != nil {
		return err
	}
	return c.withDB(s, func(ctx context.Context, d db) error {
		a, err := findAccount(ctx, d, pos[0])
		if err != nil {
			return err
		}
		return f(ctx, s, d, a, pos)
	})
}

func findAccount(ctx context.Context, d db, ref string) (store.Account, error) {
	var a store.Account
	var err error
	if strings.Contains(ref, "@") {
		a, err = d.AccountByEmail(ctx, ref)
	} else {
		a, err = d.Account(ctx, ref)
	}
	if errors.Is(err, store.ErrNotFound) {
		return a, errors.New("no such account")
	}
	return a, err
}
