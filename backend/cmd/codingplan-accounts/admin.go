package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/codingplan/codingplan/backend/internal/accounts"
	"github.com/codingplan/codingplan/backend/internal/store"
	"github.com/codingplan/codingplan/backend/internal/tokens"
	"github.com/codingplan/codingplan/backend/internal/usage"
)

func (c *cli) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	return fs
}

func (c *cli) json(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (c *cli) migrate(args []string) error {
	s, _, err := parse(c.flags("migrate"), args, 0, c.getenv)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Minute) // waits for another instance's lock
	defer cancel()
	d, err := openDB(ctx, s)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Migrate(ctx); err != nil {
		return err
	}
	v, err := d.Version(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "schema at version %d\n", v)
	return nil
}

func (c *cli) accountCreate(args []string) error {
	fs := c.flags("account create")
	email := fs.String("email", "", "the account's email (required)")
	name := fs.String("name", "", "the account's name")
	plan := fs.String("plan", "", "the account's plan (default: none)")
	pwStdin := fs.Bool("password-stdin", false, "read a web sign-in password from the first line of stdin")
	asJSON := fs.Bool("json", false, "print the account as JSON")
	s, _, err := parse(fs, args, 0, c.getenv)
	if err != nil {
		return err
	}
	*email = strings.TrimSpace(*email)
	if *email == "" || !strings.Contains(*email, "@") || len(*email) > 320 {
		return fmt.Errorf("%w: --email is required and must be an email address", errUsage)
	}
	if err := checkPlan(s, *plan); err != nil {
		return err
	}
	var hash string
	if *pwStdin {
		line, err := bufio.NewReader(io.LimitReader(c.stdin, 4096)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("reading the password: %w", err)
		}
		pw := strings.TrimRight(line, "\r\n")
		if len(pw) < 8 || len(pw) > 1024 {
			return fmt.Errorf("%w: the password must have 8 to 1024 bytes", errUsage)
		}
		hash = accounts.HashPassword(pw)
	}
	return c.withDB(s, func(ctx context.Context, d db) error {
		a, err := d.CreateAccount(ctx, store.Account{Email: *email, Name: *name, Plan: *plan})
		if errors.Is(err, store.ErrExists) {
			return errors.New("an account with this email exists already")
		}
		if err != nil {
			return err
		}
		if hash != "" {
			if err := d.SetPassword(ctx, a.ID, hash); err != nil {
				return fmt.Errorf("account %s created, but its password was not set: %w", a.ID, err)
			}
		}
		if *asJSON {
			return c.json(accounts.ViewAccount(a, nil))
		}
		fmt.Fprintln(c.stdout, a.ID)
		return nil
	})
}

func checkPlan(s *accounts.Settings, plan string) error {
	if plan == "" {
		return nil
	}
	if _, ok := s.Plans[plan]; !ok {
		return fmt.Errorf("%w: plan %q is not configured (plans: %s)", errUsage, plan, strings.Join(s.PlanNames(), ", "))
	}
	return nil
}

func (c *cli) accountList(args []string) error {
	fs := c.flags("account list")
	asJSON := fs.Bool("json", false, "print JSON")
	s, _, err := parse(fs, args, 0, c.getenv)
	if err != nil {
		return err
	}
	return c.withDB(s, func(ctx context.Context, d db) error {
		list, err := d.ListAccounts(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			out := []accounts.AccountView{}
			for _, a := range list {
				v := accounts.ViewAccount(a, nil)
				v.Usage = nil
				out = append(out, v)
			}
			return c.json(out)
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tEMAIL\tPLAN\tSTATUS\tCREATED")
		for _, a := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.ID, printable(a.Email), orDash(a.Plan), a.Status, a.Created.Format(time.RFC3339))
		}
		return tw.Flush()
	})
}

func (c *cli) accountShow(args []string) error {
	fs := c.flags("account show")
	asJSON := fs.Bool("json", false, "print JSON")
	return c.onAccount(fs, args, 1, func(ctx context.Context, s *accounts.Settings, d db, a store.Account, pos []string) error {
		u, err := d.Usage(ctx, a.ID)
		if err != nil {
			return err
		}
		v := accounts.ViewAccount(a, u)
		if *asJSON {
			return c.json(v)
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "id\t%s\nemail\t%s\nname\t%s\nplan\t%s\nstatus\t%s\ncreated\t%s\nbilling\t%s\n",
			a.ID, printable(a.Email), printable(a.Name), orDash(a.Plan), a.Status, a.Created.Format(time.RFC3339), orDash(a.BillingProvider))
		for _, day := range v.Usage {
			fmt.Fprintf(tw, "usage %s\t%d requests, %d tokens\n", day.Day, day.Requests, day.Tokens)
		}
		return tw.Flush()
	})
}

// notifier connects to the routing plane's Valkey, before anything changes, so that an
// unreachable one fails the command while it can still be run again. With no Valkey
// configured it says once that the change reaches the nodes only at token expiry, and returns
// nil.
func (c *cli) notifier(s *accounts.Settings) (*publisher, func(), error) {
	client, err := dialValkey(s, c.getenv)
	if err != nil {
		return nil, nil, fmt.Errorf("nothing changed: %w", err)
	}
	if client == nil {
		fmt.Fprintln(c.stderr, "note:", noValkey)
		return nil, func() {}, nil
	}
	return newPublisher(s, client), client.Close, nil
}

// update reads the account, lets f change it, writes it back and tells the routing plane
// (accounts.Announce) when the account lost access or changed plan.
func (c *cli) update(name string, args []string, npos int, f func(s *accounts.Settings, a *store.Account, pos []string) error) error {
	s, pos, err := parse(c.flags(name), args, npos, c.getenv)
	if err != nil {
		return err
	}
	return c.withDB(s, func(ctx context.Context, d db) error {
		a, err := findAccount(ctx, d, pos[0])
		if err != nil {
			return err
		}
		old := a
		if err := f(s, &a, pos[1:]); err != nil {
			return err
		}
		pub, done, err := c.notifier(s)
		if err != nil {
			return err
		}
		defer done()
		if err := d.UpdateAccount(ctx, a); err != nil {
			return err
		}
		if pub == nil {
			return nil
		}
		if err := accounts.Announce(ctx, pub, a.ID, old.Plan, old.Status, a.Plan, a.Status); err != nil {
			return fmt.Errorf("account %s updated, but the change was not published to the routing plane: %w", a.ID, err)
		}
		return nil
	})
}

func (c *cli) accountSetPlan(args []string) error {
	return c.update("account set-plan", args, 2, func(s *accounts.Settings, a *store.Account, pos []string) error {
		plan := pos[0]
		if plan == "none" {
			plan = ""
		}
		if err := checkPlan(s, plan); err != nil {
			return err
		}
		a.Plan = plan
		return nil
	})
}

func (c *cli) accountSuspend(args []string) error {
	return c.update("account suspend", args, 1, func(_ *accounts.Settings, a *store.Account, _ []string) error {
		a.Status = store.StatusSuspended
		return nil
	})
}

func (c *cli) accountResume(args []string) error {
	return c.update("account resume", args, 1, func(_ *accounts.Settings, a *store.Account, _ []string) error {
		if a.Status != store.StatusSuspended {
			return fmt.Errorf("account %s is not suspended (status %s)", a.ID, a.Status)
		}
		a.Status = store.StatusActive
		return nil
	})
}

func (c *cli) accountDelete(args []string) error {
	return c.onAccount(c.flags("account delete"), args, 1, func(ctx context.Context, s *accounts.Settings, d db, a store.Account, pos []string) error {
		pub, done, err := c.notifier(s)
		if err != nil {
			return err
		}
		defer done()
		if err := d.DeleteAccount(ctx, a.ID); err != nil {
			return err
		}
		if pub == nil {
			fmt.Fprintf(c.stderr, "account %s deleted; its usage counts in Valkey expire on their own (pass --valkey to delete them now)\n", a.ID)
			return nil
		}
		if err := pub.Revoke(ctx, a.ID, ""); err != nil {
			return fmt.Errorf("account %s deleted, but the revocation was not published: %w", a.ID, err)
		}
		if err := usage.Forget(ctx, pub.client, s.ValkeyPrefix, a.ID, time.Now()); err != nil {
			return fmt.Errorf("account %s deleted, but its usage counts were not: %w", a.ID, err)
		}
		fmt.Fprintf(c.stderr, "account %s deleted\n", a.ID)
		return nil
	})
}

func (c *cli) keyCreate(args []string) error {
	fs := c.flags("key create")
	name := fs.String("name", "", "the key's name, shown in lists (required)")
	asJSON := fs.Bool("json", false, "print JSON")
	s, pos, err := parse(fs, args, 1, c.getenv)
	if err != nil {
		return err
	}
	if *name = strings.TrimSpace(*name); !accounts.ValidName(*name) {
		return fmt.Errorf("%w: --name is required: 1 to 100 printable characters", errUsage)
	}
	return c.withDB(s, func(ctx context.Context, d db) error {
		a, err := findAccount(ctx, d, pos[0])
		if err != nil {
			return err
		}
		iss, err := newIssuer(s, d, nil, nil)
		if err != nil {
			return err
		}
		key, rec, err := iss.NewAPIKey(ctx, a.ID, *name)
		if err != nil {
			return err
		}
		if *asJSON {
			return c.json(struct {
				accounts.KeyView
				Key string `json:"key"`
			}{accounts.ViewKeys([]store.APIKey{rec})[0], key})
		}
		fmt.Fprintln(c.stdout, key)
		fmt.Fprintf(c.stderr, "key %s created; it is shown only this once\n", rec.ID)
		return nil
	})
}

func (c *cli) keyList(args []string) error {
	fs := c.flags("key list")
	asJSON := fs.Bool("json", false, "print JSON")
	return c.onAccount(fs, args, 1, func(ctx context.Context, s *accounts.Settings, d db, a store.Account, pos []string) error {
		keys, err := d.ListAPIKeys(ctx, a.ID)
		if err != nil {
			return err
		}
		if *asJSON {
			return c.json(accounts.ViewKeys(keys))
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tPREFIX\tNAME\tCREATED\tLAST USED\tREVOKED")
		for _, k := range keys {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Prefix, printable(k.Name), k.Created.Format(time.RFC3339), when(k.LastUsed), when(k.Revoked))
		}
		return tw.Flush()
	})
}

func (c *cli) keyRevoke(args []string) error {
	return c.onAccount(c.flags("key revoke"), args, 2, func(ctx context.Context, s *accounts.Settings, d db, a store.Account, pos []string) error {
		return c.revoke(ctx, s, a.ID, pos[1], "key", d.RevokeAPIKey)
	})
}

func (c *cli) signinList(args []string) error {
	fs := c.flags("signin list")
	asJSON := fs.Bool("json", false, "print JSON")
	return c.onAccount(fs, args, 1, func(ctx context.Context, s *accounts.Settings, d db, a store.Account, pos []string) error {
		fams, err := d.ListFamilies(ctx, a.ID)
		if err != nil {
			return err
		}
		if *asJSON {
			return c.json(accounts.ViewSignins(fams))
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tCLIENT\tCREATED\tLAST USED\tREVOKED")
		for _, f := range fams {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.ID, printable(f.Client), f.Created.Format(time.RFC3339), when(f.LastUsed), when(f.Revoked))
		}
		return tw.Flush()
	})
}

func (c *cli) signinRevoke(args []string) error {
	return c.onAccount(c.flags("signin revoke"), args, 2, func(ctx context.Context, s *accounts.Settings, d db, a store.Account, pos []string) error {
		return c.revoke(ctx, s, a.ID, pos[1], "sign-in", d.RevokeFamily)
	})
}

// revoke revokes an API key or a sign-in with del and publishes the revocation of its tokens
// (sid = its id).
func (c *cli) revoke(ctx context.Context, s *accounts.Settings, accountID, id, what string, del func(ctx context.Context, accountID, id string, at time.Time) error) error {
	pub, done, err := c.notifier(s)
	if err != nil {
		return err
	}
	defer done()
	err = del(ctx, accountID, id, time.Now())
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("the account has no such %s", what)
	}
	if err != nil || pub == nil {
		return err
	}
	if err := pub.Revoke(ctx, accountID, id); err != nil {
		return fmt.Errorf("%s %s revoked, but the revocation was not published to the routing plane: %w", what, id, err)
	}
	return nil
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printable keeps a user-supplied value from moving the terminal's cursor or colours.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '?'
		}
		return r
	}, s)
}

func (c *cli) keysRotate(args []string) error {
	s, _, err := parse(c.flags("keys rotate"), args, 0, c.getenv)
	if err != nil {
		return err
	}
	return c.withDB(s, func(ctx context.Context, d db) error {
		iss, err := newIssuer(s, d, nil, nil)
		if err != nil {
			return err
		}
		kid, err := iss.Rotate(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintln(c.stdout, kid)
		fmt.Fprintf(c.stderr, "signing key %s added: published now, signing from %s on\n", kid, tokens.DefaultRotateDelay)
		return nil
	})
}

func (c *cli) keysList(args []string) error {
	fs := c.flags("keys list")
	asJSON := fs.Bool("json", false, "print JSON")
	s, _, err := parse(fs, args, 0, c.getenv)
	if err != nil {
		return err
	}
	return c.withDB(s, func(ctx context.Context, d db) error {
		keys, err := d.SigningKeys(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			type view struct {
				Kid     string     `json:"kid"`
				Created time.Time  `json:"created"`
				Retired *time.Time `json:"retired,omitempty"`
			}
			out := []view{}
			for _, k := range keys {
				v := view{Kid: k.ID, Created: k.Created}
				if !k.Retired.IsZero() {
					v.Retired = &k.Retired
				}
				out = append(out, v)
			}
			return c.json(out)
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KID\tCREATED\tRETIRED")
		for _, k := range keys {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", k.ID, k.Created.Format(time.RFC3339), when(k.Retired))
		}
		return tw.Flush()
	})
}
