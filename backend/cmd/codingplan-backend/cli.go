package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"time"

	"github.com/codingplan/codingplan/backend/internal/auth"
	"github.com/codingplan/codingplan/backend/internal/config"
	"github.com/codingplan/codingplan/backend/internal/usage"
)

// version is set at build time with -ldflags "-X main.version=..."; otherwise it comes from
// the module's build information.
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

const usageText = `usage: codingplan-backend <command> [flags]

commands:
  serve     run the service (flags: serve --help; settings: docs/configuration.md)
  token     print a development token: token --sub USER --plan PLAN [--ttl 24h] [--sid ID]
  usage     print a user's counts for one UTC day: usage --user USER [--day YYYY-MM-DD] --valkey ADDR
  version   print the version
`

// run dispatches a subcommand. getenv reads the environment (os.Getenv in main).
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return fmt.Errorf("%w: no command", errUsage)
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return serve(ctx, rest, stdout, stderr, getenv)
	case "token":
		return token(rest, stdout, stderr, getenv)
	case "usage":
		return usageCmd(ctx, rest, stdout, stderr, getenv)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "codingplan-backend", versionString())
		return nil
	case "help", "--help", "-help", "-h":
		fmt.Fprint(stdout, usageText)
		return nil
	default:
		fmt.Fprint(stderr, usageText)
		return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
	}
}

// parse registers the configuration flags on fs, parses args and loads the configuration.
func parse(fs *flag.FlagSet, args []string, getenv func(string) string) (*config.Config, error) {
	loader := config.Register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return loader.Load(getenv)
}

// token prints a development token signed with the state dir's dev key.
func token(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sub := fs.String("sub", "", "the token's subject: the user id (required)")
	plan := fs.String("plan", "pro", "the token's plan")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	sid := fs.String("sid", "", "the token's sid claim: the sign-in or key it stands for (optional)")
	cfg, err := parse(fs, args, getenv)
	if err != nil {
		return err
	}
	if strings.TrimSpace(*sub) == "" {
		return fmt.Errorf("%w: --sub is required", errUsage)
	}
	if _, ok := cfg.Plans[*plan]; !ok {
		return fmt.Errorf("%w: plan %q is not configured (plans: %s)", errUsage, *plan, planNames(cfg))
	}
	if *ttl <= 0 {
		return fmt.Errorf("%w: --ttl must be positive", errUsage)
	}
	key, _, err := auth.LoadOrCreateDevKey(cfg.StateDir)
	if err != nil {
		return err
	}
	key.Issuer, key.Audience = cfg.Issuer, cfg.Audience
	tok, err := key.MintSID(*sub, *plan, *sid, time.Now(), *ttl)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}

func planNames(cfg *config.Config) string {
	names := make([]string, 0, len(cfg.Plans))
	for n := range cfg.Plans {
		names = append(names, n)
	}
	return strings.Join(names, ", ")
}

// usageCmd prints one user's counts for one UTC day as a JSON line.
func usageCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("usage", flag.ContinueOnError)
	fs.SetOutput(stderr)
	user := fs.String("user", "", "the user id (the token's sub; required)")
	dayFlag := fs.String("day", "", "the UTC day, YYYY-MM-DD (default today)")
	cfg, err := parse(fs, args, getenv)
	if err != nil {
		return err
	}
	if *user == "" {
		return fmt.Errorf("%w: --user is required", errUsage)
	}
	day := time.Now().UTC()
	if *dayFlag != "" {
		if day, err = usage.ParseDay(*dayFlag); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
	}
	client, err := dialValkey(cfg, getenv)
	if err != nil {
		return err
	}
	if client == nil {
		return fmt.Errorf("%w: usage counts live in Valkey: pass --valkey ADDR", errUsage)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	counts, err := usage.New(client, cfg.ValkeyPrefix, nil).Day(ctx, *user, day)
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(struct {
		User string `json:"user"`
		Day  string `json:"day"`
		usage.Counts
	}{*user, day.Format("2006-01-02"), counts})
}
