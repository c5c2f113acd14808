package accounts

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/codingplan/codingplan/backend/internal/billing"
	"github.com/codingplan/codingplan/backend/internal/valkeyconn"
)

// EnvPrefix starts every environment variable of codingplan-accounts.
const EnvPrefix = "CODINGPLAN_ACCOUNTS_"

// EnvConfigFile names the config file when --config is not given.
const EnvConfigFile = EnvPrefix + "CONFIG"

// Settings is every setting of codingplan-accounts. Scalar fields, also inside [billing] and
// [rate], can be set by environment variable (CODINGPLAN_ACCOUNTS_ + the dotted TOML key in upper
// case with '_' for '.') and by flag (-- + the key with '-' for '_' and '.'); tables of tables
// ([plans], [billing.plans]) only in the file. docs/accounts.md lists every key; a test keeps the
// two in step.
type Settings struct {
	// Listen is the TCP address of the HTTP server.
	Listen string `toml:"listen" usage:"address to listen on"`
	// StateDir holds the SQLite database when Database is empty. Default
	// $XDG_STATE_HOME/codingplan, or ~/.local/state/codingplan.
	StateDir string `toml:"state_dir" usage:"directory of the default SQLite database"`
	// Database is "sqlite:<path>" or a PostgreSQL URL (postgres://...; TLS by its sslmode,
	// sslrootcert). Empty means sqlite:<state_dir>/accounts.db.
	Database string `toml:"database" usage:"sqlite:<path> or postgres://... (default: SQLite in the state dir)"`
	// PublicURL is the URL browsers and editors reach this service at; an https URL makes the
	// session cookie Secure. Default http://<listen>.
	PublicURL string `toml:"public_url" usage:"URL the service is reached at (https makes cookies Secure)"`
	// LogLevel is debug, info, warn or error. Logs carry ids, never emails, passwords, keys,
	// tokens or cookies.
	LogLevel string `toml:"log_level" usage:"debug, info, warn or error"`
	// SessionTTL is how long a web sign-in lasts; it is kept on the server and not renewed.
	SessionTTL time.Duration `toml:"session_ttl" usage:"lifetime of a web sign-in"`
	// Issuer is the iss claim of the access tokens; it must equal the backend's issuer setting.
	Issuer string `toml:"issuer" usage:"iss claim of access tokens (the backend's issuer)"`
	// Audience is the aud claim of the access tokens; it must equal the backend's audience.
	Audience string `toml:"audience" usage:"aud claim of access tokens (the backend's audience)"`
	// AccessTTL is how long an access token lives; revocations reach the nodes sooner, through
	// Valkey, and the denylist keys must outlive it.
	AccessTTL time.Duration `toml:"access_ttl" usage:"lifetime of an access token"`
	// Valkey is the routing plane's Valkey (host:port, or a cluster seed): revocations and plan
	// changes are published there (package revoke), serve imports the daily usage counts from it,
	// and `account delete` removes an account's usage counts from it. Empty: revocations take
	// effect only when the tokens expire, and usage is not imported.
	Valkey string `toml:"valkey" usage:"the routing plane's Valkey: revocations, and usage counts for account delete"`
	// ValkeyCluster selects Valkey Cluster: "true" uses Valkey as the seed; a comma-separated
	// list names the seeds. As the routing plane's valkey_cluster.
	ValkeyCluster string `toml:"valkey_cluster" usage:"Valkey Cluster: true, or comma-separated seed addresses"`
	// ValkeyPrefix is the routing plane's valkey_prefix.
	ValkeyPrefix string `toml:"valkey_prefix" usage:"the routing plane's Valkey key prefix"`
	// ValkeyUsername is the ACL user; empty: the default user.
	ValkeyUsername string `toml:"valkey_username" usage:"Valkey ACL user (empty: the default user)"`
	// ValkeyPasswordEnv names the environment variable holding the Valkey password.
	ValkeyPasswordEnv string `toml:"valkey_password_env" usage:"name of the environment variable holding the Valkey password"`
	// ValkeyTLS connects to Valkey over TLS 1.2 or later.
	ValkeyTLS bool `toml:"valkey_tls" usage:"connect to Valkey over TLS"`
	// ValkeyTLSCA is a PEM file of the CA certificates for Valkey; empty: the system's roots.
	ValkeyTLSCA string `toml:"valkey_tls_ca" usage:"PEM file of the CA certificates for Valkey (empty: system roots)"`
	// ValkeyTLSServerName is the name Valkey's certificate must carry; empty: the host dialled.
	ValkeyTLSServerName string `toml:"valkey_tls_server_name" usage:"name to verify in Valkey's certificate (empty: the host dialled)"`
	// ValkeyTLSCert and ValkeyTLSKey are PEM files of a client certificate and its key.
	ValkeyTLSCert string `toml:"valkey_tls_cert" usage:"PEM file of a client certificate for Valkey"`
	ValkeyTLSKey  string `toml:"valkey_tls_key" usage:"PEM file of the client certificate's key"`
	// UsageImportEvery is how often serve copies the routing plane's daily usage counts from
	// Valkey into the database (ImportUsage, today and yesterday); 0 turns the import off.
	UsageImportEvery time.Duration `toml:"usage_import_every" usage:"period of the usage import from Valkey (0: off)"`
	// RevocationTTL is how long a revocation's denylist key lives in Valkey: at least access_ttl
	// plus the nodes' clock leeway (30s), so that no token it refuses outlives it.
	RevocationTTL time.Duration `toml:"revocation_ttl" usage:"lifetime of the denylist keys in Valkey (at least access_ttl + 30s)"`

	// SignupPlan is the plan an account created on the web pages gets once its email is
	// confirmed; empty: none until it subscribes (checkout). Must be in [plans].
	SignupPlan string `toml:"signup_plan" usage:"plan of a new account from the sign-up page (empty: none)"`
	// Dev turns on development helpers: with no mail.smtp, /dev/mail lists the mails the pages
	// sent (never turn it on for a service others can reach).
	Dev bool `toml:"dev" usage:"development mode: /dev/mail lists the mails sent when no SMTP server is set"`
	// Mail is how the web pages send mail (sign-up confirmation, password reset).
	Mail Mail `toml:"mail"`

	// Plans are the plans an account can have, as the routing plane's [plans] (a name and its
	// concurrency); set-plan and the billing plan map accept only these names.
	Plans map[string]Plan `toml:"plans"`
	// Billing is the webhooks' and checkouts' configuration; its secrets are read from the
	// environment variables these settings name, never written in the file.
	Billing Billing `toml:"billing"`
	// Rate limits per client address and per account, each a token bucket in memory.
	Rate Rates `toml:"rate"`
}

// Mail is the [mail] table: the SMTP server the web pages send through. Without SMTP, mails
// are not delivered: they are kept in memory (the last 100) and, with dev, listed at /dev/mail.
type Mail struct {
	// SMTP is the server's host:port (587 with STARTTLS, offered by the server, is used when
	// offered; credentials are sent only over TLS or to localhost); empty: no mail is delivered.
	SMTP string `toml:"smtp" usage:"SMTP server host:port (empty: mails are not delivered)"`
	// From is the sender of every mail, an RFC 5322 address.
	From string `toml:"from" usage:"sender address of the mails"`
	// Username is the SMTP user (PLAIN auth); empty: no authentication.
	Username string `toml:"username" usage:"SMTP user name (empty: no authentication)"`
	// PasswordEnv names the environment variable holding the SMTP password.
	PasswordEnv string `toml:"password_env" usage:"name of the environment variable holding the SMTP password"`
}

// Plan is one [plans.<name>] table.
type Plan struct {
	// Concurrency is how many model streams the plan runs at once (the routing plane's limit).
	Concurrency int `toml:"concurrency"`
}

// Billing is the [billing] table: billing.Config with secrets by environment variable name.
type Billing struct {
	// StripeSecretsEnv names the environment variables holding the Stripe endpoint's signing
	// secrets (whsec_...); list two during a rotation.
	StripeSecretsEnv []string `toml:"stripe_secrets_env" usage:"environment variables holding Stripe webhook secrets"`
	// PolarSecretsEnv names the environment variables holding the Polar endpoint's secrets.
	PolarSecretsEnv []string `toml:"polar_secrets_env" usage:"environment variables holding Polar webhook secrets"`
	// StripeKeyEnv names the environment variable holding the Stripe API key for Checkout.
	StripeKeyEnv string `toml:"stripe_key_env" usage:"environment variable holding the Stripe API key"`
	// Tolerance is how far a delivery's signed timestamp may be from now.
	Tolerance time.Duration `toml:"tolerance" usage:"webhook timestamp tolerance"`
	// StripeAPIBase is Stripe's API base URL, changed only for tests.
	StripeAPIBase string `toml:"stripe_api_base" usage:"Stripe API base URL (tests only)"`
	// ManageURL is where the account page's "Manage billing" link goes for an account with a
	// subscription: the provider's customer portal (Stripe's customer portal login link, Polar's
	// customer portal). Empty: no link.
	ManageURL string `toml:"manage_url" usage:"customer portal link for managing a subscription"`
	// PolarCheckoutURL is a Polar checkout link.
	PolarCheckoutURL string `toml:"polar_checkout_url" usage:"Polar checkout link"`
	// SuccessURL and CancelURL are where Stripe Checkout sends the browser back to.
	SuccessURL string `toml:"success_url" usage:"Stripe Checkout success URL"`
	CancelURL  string `toml:"cancel_url" usage:"Stripe Checkout cancel URL"`
	// Plans maps Stripe price or product ids and Polar product or price ids to plan names.
	Plans map[string]string `toml:"plans"`
}

// Rates is the [rate] table. Each limit is a sustained rate per minute and a burst; 0 turns
// that limit off.
type Rates struct {
	// Session limits sign-in attempts per client address and per email.
	SessionPerMinute int `toml:"session_per_minute" usage:"sign-in attempts per minute per address and per email"`
	SessionBurst     int `toml:"session_burst" usage:"sign-in attempts allowed at once"`
	// Token limits POST /v1/token per client address, and per account where the token
	// handler calls AccountLimit.
	TokenPerMinute int `toml:"token_per_minute" usage:"token requests per minute per address and per account"`
	TokenBurst     int `toml:"token_burst" usage:"token requests allowed at once"`
	// Device limits POST /v1/device/code per address and device approvals per address and per
	// account (user codes are short: guessing them must stay slow).
	DevicePerMinute int `toml:"device_per_minute" usage:"device code requests and approvals per minute per address and per account"`
	DeviceBurst     int `toml:"device_burst" usage:"device requests allowed at once"`
	// Webhook limits deliveries per client address (the providers' own addresses).
	WebhookPerMinute int `toml:"webhook_per_minute" usage:"webhook deliveries per minute per address"`
	WebhookBurst     int `toml:"webhook_burst" usage:"webhook deliveries allowed at once"`
	// Account limits the signed-in account API (account, keys, sign-ins) per account.
	AccountPerMinute int `toml:"account_per_minute" usage:"account API requests per minute per account"`
	AccountBurst     int `toml:"account_burst" usage:"account API requests allowed at once"`
}

// DefaultSettings returns the settings used when nothing is set.
func DefaultSettings() *Settings {
	return &Settings{
		Listen:        "127.0.0.1:8788",
		StateDir:      defaultStateDir(),
		LogLevel:      "info",
		SessionTTL:    7 * 24 * time.Hour,
		Issuer:        "codingplan",
		Audience:      "codingplan-backend",
		AccessTTL:     15 * time.Minute,
		RevocationTTL: 20 * time.Minute,
		ValkeyPrefix:  "codingplan",
		Plans:         map[string]Plan{"lite": {Concurrency: 1}, "pro": {Concurrency: 3}, "max": {Concurrency: 10}},
		Billing:       Billing{Tolerance: billing.DefaultTolerance},
		Mail:          Mail{From: "codingplan <noreply@localhost>"},

		UsageImportEvery: 5 * time.Minute,
		Rate: Rates{
			SessionPerMinute: 10, SessionBurst: 5,
			TokenPerMinute: 60, TokenBurst: 20,
			DevicePerMinute: 10, DeviceBurst: 5,
			WebhookPerMinute: 600, WebhookBurst: 100,
			AccountPerMinute: 120, AccountBurst: 30,
		},
	}
}

func defaultStateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "codingplan")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "codingplan")
	}
	return ".codingplan"
}

// DatabaseURL is Database, or the default SQLite file in the state dir.
func (s *Settings) DatabaseURL() string {
	if s.Database != "" {
		return s.Database
	}
	return "sqlite:" + filepath.Join(s.StateDir, "accounts.db")
}

// URL is PublicURL, or http://<listen>.
func (s *Settings) URL() string {
	if s.PublicURL != "" {
		return strings.TrimRight(s.PublicURL, "/")
	}
	return "http://" + s.Listen
}

// ValkeyAddrs returns the Valkey addresses and whether they are a cluster's seeds; none when
// no Valkey is configured.
func (s *Settings) ValkeyAddrs() (addrs []string, cluster bool, err error) {
	return valkeyconn.Addrs(s.Valkey, s.ValkeyCluster)
}

// ValkeyConn is how to reach the routing plane's Valkey; its Addrs are empty when none is
// configured.
func (s *Settings) ValkeyConn() valkeyconn.Config {
	addrs, cluster, _ := s.ValkeyAddrs() // checked by Validate
	return valkeyconn.Config{
		Addrs: addrs, Cluster: cluster, Username: s.ValkeyUsername, PasswordEnv: s.ValkeyPasswordEnv,
		TLS: s.ValkeyTLS, TLSCA: s.ValkeyTLSCA, TLSServerName: s.ValkeyTLSServerName,
		TLSCert: s.ValkeyTLSCert, TLSKey: s.ValkeyTLSKey,
	}
}

// PlanNames returns the configured plan names, sorted.
func (s *Settings) PlanNames() []string {
	names := make([]string, 0, len(s.Plans))
	for n := range s.Plans {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// BillingConfig reads the secrets the settings name from the environment.
func (s *Settings) BillingConfig(getenv func(string) string) (billing.Config, error) {
	b := s.Billing
	read := func(names []string) ([]string, error) {
		var out []string
		for _, n := range names {
			v := strings.TrimSpace(getenv(n))
			if v == "" {
				return nil, fmt.Errorf("accounts: billing: environment variable %s is empty", n)
			}
			out = append(out, v)
		}
		return out, nil
	}
	stripe, err := read(b.StripeSecretsEnv)
	if err != nil {
		return billing.Config{}, err
	}
	polar, err := read(b.PolarSecretsEnv)
	if err != nil {
		return billing.Config{}, err
	}
	var key string
	if b.StripeKeyEnv != "" {
		k, err := read([]string{b.StripeKeyEnv})
		if err != nil {
			return billing.Config{}, err
		}
		key = k[0]
	}
	return billing.Config{
		StripeSecrets: stripe, PolarSecrets: polar, Tolerance: b.Tolerance, Plans: billing.PlanMap(b.Plans),
		StripeAPIBase: b.StripeAPIBase, StripeKey: key, PolarCheckoutURL: b.PolarCheckoutURL,
		SuccessURL: b.SuccessURL, CancelURL: b.CancelURL,
	}, nil
}

// Validate checks the settings.
func (s *Settings) Validate() error {
	bad := func(format string, a ...any) error { return fmt.Errorf("accounts: settings: "+format, a...) }
	var l slog.Level
	if err := l.UnmarshalText([]byte(s.LogLevel)); err != nil {
		return bad("log_level %q: want debug, info, warn or error", s.LogLevel)
	}
	if s.Listen == "" {
		return bad("listen is empty")
	}
	if s.Database == "" && s.StateDir == "" {
		return bad("neither database nor state_dir is set")
	}
	if _, _, err := ParseDatabase(s.DatabaseURL()); err != nil {
		return bad("%v", err)
	}
	if s.PublicURL != "" {
		u, err := url.Parse(s.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("public_url %q: want an http or https URL", s.PublicURL)
		}
	}
	if s.UsageImportEvery < 0 {
		return bad("usage_import_every %v: not negative", s.UsageImportEvery)
	}
	if s.SessionTTL < time.Minute {
		return bad("session_ttl %v: at least 1m", s.SessionTTL)
	}
	if s.Issuer == "" || s.Audience == "" {
		return bad("issuer and audience must be set")
	}
	if s.AccessTTL < time.Minute || s.AccessTTL > 24*time.Hour {
		return bad("access_ttl %v: from 1m to 24h", s.AccessTTL)
	}
	if s.RevocationTTL < s.AccessTTL+30*time.Second {
		return bad("revocation_ttl %v: at least access_ttl (%v) + 30s", s.RevocationTTL, s.AccessTTL)
	}
	if _, _, err := s.ValkeyAddrs(); err != nil {
		return bad("%v", err)
	}
	if (s.ValkeyTLSCert == "") != (s.ValkeyTLSKey == "") {
		return bad("valkey_tls_cert and valkey_tls_key must be given together")
	}
	if len(s.Plans) == 0 {
		return bad("no plans")
	}
	for name, p := range s.Plans {
		if name == "" || strings.ContainsAny(name, " \t\r\n{}") {
			return bad("plan name %q", name)
		}
		if p.Concurrency < 1 {
			return bad("plans.%s.concurrency %d: at least 1", name, p.Concurrency)
		}
	}
	if _, ok := s.Plans[s.SignupPlan]; s.SignupPlan != "" && !ok {
		return bad("signup_plan %q is not in [plans]", s.SignupPlan)
	}
	if _, err := mail.ParseAddress(s.Mail.From); err != nil {
		return bad("mail.from %q: not an email address", s.Mail.From)
	}
	if s.Mail.SMTP != "" {
		if _, _, err := net.SplitHostPort(s.Mail.SMTP); err != nil {
			return bad("mail.smtp %q: want host:port", s.Mail.SMTP)
		}
	}
	if s.Billing.ManageURL != "" && !strings.HasPrefix(s.Billing.ManageURL, "https://") {
		return bad("billing.manage_url: want an https URL")
	}
	for id, plan := range s.Billing.Plans {
		if _, ok := s.Plans[plan]; !ok {
			return bad("billing.plans: %q maps to %q, which is not in [plans]", id, plan)
		}
	}
	for _, n := range slices.Concat(s.Billing.StripeSecretsEnv, s.Billing.PolarSecretsEnv, []string{s.Billing.StripeKeyEnv}) {
		if strings.HasPrefix(n, "whsec_") || strings.HasPrefix(n, "sk_") || strings.HasPrefix(n, "rk_") {
			return bad("billing: a secret is written where an environment variable name belongs")
		}
	}
	r := reflect.ValueOf(s.Rate)
	for i := range r.NumField() {
		if r.Field(i).Int() < 0 {
			return bad("rate.%s is negative", r.Type().Field(i).Tag.Get("toml"))
		}
	}
	return nil
}

// ParseDatabase splits a database setting into its kind ("sqlite" or "postgres") and the path
// or DSN.
func ParseDatabase(db string) (kind, target string, err error) {
	switch {
	case strings.HasPrefix(db, "sqlite:"):
		if p := strings.TrimPrefix(db, "sqlite:"); p != "" {
			return "sqlite", p, nil
		}
	case strings.HasPrefix(db, "postgres://"), strings.HasPrefix(db, "postgresql://"):
		return "postgres", db, nil
	}
	return "", "", errors.New("database: want sqlite:<path> or postgres://...") // never echoes a DSN
}
