// Package config is the one settings struct of codingplan-backend, with its defaults, and the
// loader that fills it from a TOML file, CODINGPLAN_* environment variables and flags, in
// increasing precedence. docs/configuration.md documents every field; a test keeps the two in
// step.
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/codingplan/codingplan/backend/internal/upstream"
	"github.com/codingplan/codingplan/backend/internal/valkeyconn"
	wire "github.com/codingplan/codingplan/shared"
)

// Config is every setting of codingplan-backend. Scalar fields can also be set by environment
// variable (CODINGPLAN_ + the TOML key in upper case) and by flag (-- + the TOML key with '-'
// for '_'); tables only in the file.
type Config struct {
	// Listen is the TCP address of the HTTP server: /v1/ws, /healthz, /readyz, /metrics.
	Listen string `toml:"listen" usage:"address to listen on"`
	// StateDir holds the development signing key and its jwks.json. Default
	// $XDG_STATE_HOME/codingplan, or ~/.local/state/codingplan.
	StateDir string `toml:"state_dir" usage:"directory for the development signing key"`
	// LogLevel is debug, info, warn or error. Logs never hold content at any level.
	LogLevel string `toml:"log_level" usage:"debug, info, warn or error"`

	// JWKS is where token verification keys come from: a file path or an https URL of a JWKS
	// document. Empty means the development key in StateDir, created on first run.
	JWKS string `toml:"jwks" usage:"JWKS file or https URL (default: the dev key in the state dir)"`
	// Issuer is the iss every token must carry.
	Issuer string `toml:"issuer" usage:"required token issuer (iss)"`
	// Audience is the aud every token must carry.
	Audience string `toml:"audience" usage:"required token audience (aud)"`
	// TokenLeeway is the clock skew allowed when checking exp and nbf.
	TokenLeeway time.Duration `toml:"token_leeway" usage:"clock skew allowed on exp and nbf"`
	// JWKSRefetch is the least time between two reloads of JWKS caused by an unknown kid.
	JWKSRefetch time.Duration `toml:"jwks_refetch" usage:"least time between JWKS reloads on an unknown kid"`
	// JWKSMaxAge is how long a loaded JWKS is used before it is read again (a removed key then
	// stops verifying); negative keeps it until a token names an unknown kid.
	JWKSMaxAge time.Duration `toml:"jwks_max_age" usage:"how long a loaded JWKS is used before it is read again"`
	// AllowedOrigins lists the Origin header values a websocket upgrade may carry, e.g.
	// "https://app.example.com". Requests without Origin (editors, the language server) are
	// always allowed; "*" allows every origin.
	AllowedOrigins []string `toml:"allowed_origins" usage:"comma-separated Origin values browsers may connect from"`

	// Valkey is the address of the Valkey server (or a cluster seed) holding leases and usage
	// counts. Empty: an in-process limiter for a single node, and no usage metering.
	Valkey string `toml:"valkey" usage:"Valkey address; empty = in-process limiter for one node"`
	// ValkeyCluster selects Valkey Cluster: "true" uses Valkey as the seed; a comma-separated
	// list gives the seeds; empty or "false" means a single server.
	ValkeyCluster string `toml:"valkey_cluster" usage:"Valkey Cluster: true, or comma-separated seed addresses" boolflag:"true"`
	// ValkeyPrefix starts every Valkey key: <prefix>:{<user>}:...
	ValkeyPrefix string `toml:"valkey_prefix" usage:"prefix of every Valkey key"`
	// ValkeyUsername is the ACL user to authenticate as; empty: the default user.
	ValkeyUsername string `toml:"valkey_username" usage:"Valkey ACL user (empty: the default user)"`
	// ValkeyPasswordEnv names the environment variable holding the Valkey password (never the
	// password itself); empty: no password.
	ValkeyPasswordEnv string `toml:"valkey_password_env" usage:"name of the environment variable holding the Valkey password"`
	// ValkeyTLS connects to Valkey over TLS, version 1.2 or later.
	ValkeyTLS bool `toml:"valkey_tls" usage:"connect to Valkey over TLS"`
	// ValkeyTLSCA is a PEM file of the certificates that may sign Valkey's; empty: the system's
	// roots.
	ValkeyTLSCA string `toml:"valkey_tls_ca" usage:"PEM file of the CA certificates for Valkey (empty: system roots)"`
	// ValkeyTLSServerName is the name Valkey's certificate must carry; empty: the host of each
	// address dialled.
	ValkeyTLSServerName string `toml:"valkey_tls_server_name" usage:"name to verify in Valkey's certificate (empty: the host dialled)"`
	// ValkeyTLSCert and ValkeyTLSKey are PEM files of a client certificate and its key, for a
	// Valkey that asks for one (tls-auth-clients); both or neither.
	ValkeyTLSCert string `toml:"valkey_tls_cert" usage:"PEM file of a client certificate for Valkey"`
	ValkeyTLSKey  string `toml:"valkey_tls_key" usage:"PEM file of the client certificate's key"`

	// Plans maps each plan name (the token's plan claim) to its limits. A token whose plan is
	// not here is refused. A file that names any plan replaces the built-in plans entirely.
	Plans map[string]Plan `toml:"plans"`
	// NodeCap caps the model streams this node runs for all users together; 0 means no cap.
	NodeCap int `toml:"node_cap" usage:"streams this node runs at once for all users; 0 = no cap"`
	// LeaseTTL is how long a lease lives in Valkey without renewal; it renews every TTL/3.
	LeaseTTL time.Duration `toml:"lease_ttl" usage:"lease lifetime in Valkey without renewal"`
	// LeaseMaxWait is how long a request over its plan's limit waits in line before it gets
	// rate_limited; 0 rejects at once.
	LeaseMaxWait time.Duration `toml:"lease_max_wait" usage:"longest FIFO wait for a free slot before rate_limited"`
	// LeaseLinger keeps a finished stream's lease on its node, still counted in Valkey, so the
	// user's next stream there starts without a Valkey round trip; 0 turns it off.
	LeaseLinger time.Duration `toml:"lease_linger" usage:"keep a finished stream's lease this long for the user's next stream on this node (0: off)"`
	// OutagePolicy is what a node admits while Valkey is unreachable: "closed" admits no new
	// stream (running ones go on while their leases are valid); "share" admits
	// concurrency/outage_nodes of each user's streams per node, one lease_ttl into the outage.
	OutagePolicy string `toml:"outage_policy" usage:"while Valkey is unreachable: closed (no new streams) or share"`
	// OutageNodes is how many nodes share each plan's limit under outage_policy "share".
	OutageNodes int `toml:"outage_nodes" usage:"nodes sharing each plan's limit under outage_policy share"`
	// LeaseRecoveryWindow is how long after a Valkey (re)start a user with no lease in it gets
	// no new stream, so that leases the restart lost are re-established first; 0 means
	// lease_ttl + 1s; negative turns it off (a Valkey that keeps its data, or a single node).
	LeaseRecoveryWindow time.Duration `toml:"lease_recovery_window" usage:"after a Valkey restart, new streams wait this long (0: lease_ttl + 1s; negative: off)"`

	// MaxInFlight is how many streams one connection may have open at once, at most
	// wire.MaxInFlight (16).
	MaxInFlight int `toml:"max_in_flight" usage:"streams one connection may have open at once"`
	// SendQueue is how many outgoing frames one connection may buffer.
	SendQueue int `toml:"send_queue" usage:"outgoing frames buffered per connection"`
	// SlowConsumer is how long output may stay unread by the client (its pong to the ping
	// written behind the output has not come back), or a delta wait for room in a full send
	// queue, before the connection's streams are cancelled.
	SlowConsumer time.Duration `toml:"slow_consumer" usage:"how long output may stay unread before streams are cancelled"`
	// PingInterval is how often the server pings each connection.
	PingInterval time.Duration `toml:"ping_interval" usage:"websocket ping interval"`
	// IdleTimeout closes a connection that sent nothing, not even a pong, for this long.
	IdleTimeout time.Duration `toml:"idle_timeout" usage:"close a connection silent for this long"`
	// WriteTimeout bounds one websocket write.
	WriteTimeout time.Duration `toml:"write_timeout" usage:"bound on one websocket write"`
	// DrainTimeout is how long a SIGTERM lets running streams finish before cancelling them.
	DrainTimeout time.Duration `toml:"drain_timeout" usage:"time streams get to finish on SIGTERM"`

	// MaxConnsPerNode caps the websockets one user (a token's sub) may hold open on this node;
	// it holds with or without Valkey. 0 means no cap.
	MaxConnsPerNode int `toml:"max_conns_per_node" usage:"websockets one user may hold open on this node; 0 = no cap"`
	// MaxConns caps the websockets one user may hold open on all nodes together, counted in
	// Valkey (not enforced without Valkey, or while it is unreachable). 0 means no cap.
	MaxConns int `toml:"max_conns" usage:"websockets one user may hold open on all nodes (counted in Valkey); 0 = no cap"`
	// ConnCountTTL is how long a node's count of a user's connections counts in Valkey without
	// a refresh (every third of it): a node that dies stops counting within it.
	ConnCountTTL time.Duration `toml:"conn_count_ttl" usage:"how long a node's connection counts last in Valkey without a refresh"`
	// UpgradesPerMinute is how many websocket upgrades one client address (an IPv6 address by
	// its /64) may make per minute, after a burst of UpgradeBurst; 0 means no limit.
	UpgradesPerMinute int `toml:"upgrades_per_minute" usage:"websocket upgrades per minute from one client address; 0 = no limit"`
	// UpgradeBurst is how many upgrades one client address may make at once.
	UpgradeBurst int `toml:"upgrade_burst" usage:"websocket upgrades one client address may make at once"`

	// Models, default model, per-plan models and retries (upstream.Config): [[models]] tables,
	// default_model, plan_models, max_attempts, retry_backoff.
	upstream.Config
}

// Plan is one [plans.<name>] table.
type Plan struct {
	// Concurrency is how many model streams the plan runs at once, across all connections and
	// nodes.
	Concurrency int `toml:"concurrency"`
}

// Default returns the configuration used when nothing is set. Models stay empty here: Load
// fills in the local model (or the CODINGPLAN_OPENAI_* model) when none is configured.
func Default() *Config {
	return &Config{
		Listen:       "127.0.0.1:8787",
		StateDir:     defaultStateDir(),
		LogLevel:     "info",
		Issuer:       "codingplan",
		Audience:     "codingplan-backend",
		TokenLeeway:  30 * time.Second,
		JWKSRefetch:  30 * time.Second,
		JWKSMaxAge:   10 * time.Minute,
		ValkeyPrefix: "codingplan",
		Plans:        map[string]Plan{"lite": {Concurrency: 1}, "pro": {Concurrency: 3}, "max": {Concurrency: 10}},
		NodeCap:      0,
		LeaseTTL:     15 * time.Second,
		LeaseMaxWait: 2 * time.Second,
		OutagePolicy: "closed",
		LeaseLinger:  time.Second,
		MaxInFlight:  wire.MaxInFlight,
		SendQueue:    64,
		SlowConsumer: 2 * time.Second,
		PingInterval: 20 * time.Second,
		IdleTimeout:  60 * time.Second,
		WriteTimeout: 10 * time.Second,
		DrainTimeout: 30 * time.Second,
		// One editor holds one websocket: these are far above any person's use, and far below
		// what a leaked token could otherwise hold (docs/configuration.md).
		MaxConnsPerNode:   32,
		MaxConns:          64,
		ConnCountTTL:      5 * time.Minute,
		UpgradesPerMinute: 60,
		UpgradeBurst:      300,
	}
}

func defaultStateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "codingplan")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "codingplan")
	}
	return filepath.Join(os.TempDir(), "codingplan-state")
}

// Names of the local model and of the model the CODINGPLAN_OPENAI_* shortcut configures.
const (
	LocalModel  = "local"
	OpenAIModel = "openai"
	// DefaultAlias is an alias of the default model, so clients can always ask for "default".
	DefaultAlias = "default"
	// OpenAIKeyEnv is the variable the shortcut's API key is read from.
	OpenAIKeyEnv = "CODINGPLAN_OPENAI_API_KEY"
)

// applyModelDefaults fills in models when the file configured none: one openai-chat model from
// CODINGPLAN_OPENAI_BASE_URL and CODINGPLAN_OPENAI_MODEL when both are set, and the local
// model.
func (c *Config) applyModelDefaults(getenv func(string) string) {
	if len(c.Models) > 0 {
		return
	}
	base, model := getenv("CODINGPLAN_OPENAI_BASE_URL"), getenv("CODINGPLAN_OPENAI_MODEL")
	local := upstream.ModelConfig{Name: LocalModel, Provider: upstream.KindLocal}
	if base != "" && model != "" {
		m := upstream.ModelConfig{Name: OpenAIModel, Aliases: []string{DefaultAlias}, Provider: upstream.KindOpenAIChat, BaseURL: base, Model: model}
		if getenv(OpenAIKeyEnv) != "" {
			m.APIKeyEnv = OpenAIKeyEnv
		}
		c.Models = []upstream.ModelConfig{m, local}
		if c.DefaultModel == "" {
			c.DefaultModel = OpenAIModel
		}
		return
	}
	local.Aliases = []string{DefaultAlias}
	c.Models = []upstream.ModelConfig{local}
	if c.DefaultModel == "" {
		c.DefaultModel = LocalModel
	}
}

// Validate checks the settings this package owns; the upstream part is checked when the router
// is built from it.
func (c *Config) Validate() error {
	var errs []error
	if c.Listen == "" {
		errs = append(errs, errors.New("listen is empty"))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log_level %q is not debug, info, warn or error", c.LogLevel))
	}
	if c.JWKS == "" && c.StateDir == "" {
		errs = append(errs, errors.New("state_dir is empty and no jwks is set"))
	}
	if len(c.Plans) == 0 {
		errs = append(errs, errors.New("no plans configured"))
	}
	for name, p := range c.Plans {
		if p.Concurrency < 1 {
			errs = append(errs, fmt.Errorf("plan %q: concurrency must be at least 1", name))
		}
	}
	if c.MaxInFlight < 1 || c.MaxInFlight > wire.MaxInFlight {
		errs = append(errs, fmt.Errorf("max_in_flight must be between 1 and %d", wire.MaxInFlight))
	}
	if c.SendQueue < 8 {
		errs = append(errs, errors.New("send_queue must be at least 8"))
	}
	if c.NodeCap < 0 {
		errs = append(errs, errors.New("node_cap must be >= 0"))
	}
	switch c.OutagePolicy {
	case "closed":
	case "share":
		if c.OutageNodes < 1 {
			errs = append(errs, errors.New(`outage_policy "share" needs outage_nodes >= 1 (the number of backend nodes)`))
		}
	default:
		errs = append(errs, fmt.Errorf(`outage_policy must be "closed" or "share", not %q`, c.OutagePolicy))
	}
	if c.LeaseLinger < 0 {
		errs = append(errs, errors.New("lease_linger must not be negative"))
	}
	if c.LeaseRecoveryWindow > 0 && c.LeaseRecoveryWindow < c.LeaseTTL {
		errs = append(errs, errors.New("lease_recovery_window must be at least lease_ttl (or 0 for the default, or negative for none)"))
	}
	durations := map[string]time.Duration{
		"lease_ttl": c.LeaseTTL, "slow_consumer": c.SlowConsumer, "ping_interval": c.PingInterval,
		"idle_timeout": c.IdleTimeout, "write_timeout": c.WriteTimeout, "drain_timeout": c.DrainTimeout,
		"jwks_refetch": c.JWKSRefetch, "token_leeway": c.TokenLeeway, "conn_count_ttl": c.ConnCountTTL,
	}
	for k, d := range durations {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive", k))
		}
	}
	for k, n := range map[string]int{"max_conns_per_node": c.MaxConnsPerNode, "max_conns": c.MaxConns,
		"upgrades_per_minute": c.UpgradesPerMinute, "upgrade_burst": c.UpgradeBurst} {
		if n < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative", k))
		}
	}
	if c.UpgradesPerMinute > 0 && c.UpgradeBurst < 1 {
		errs = append(errs, errors.New("upgrade_burst must be at least 1 when upgrades_per_minute is set"))
	}
	if c.LeaseMaxWait < 0 {
		errs = append(errs, errors.New("lease_max_wait must not be negative"))
	}
	if c.PingInterval >= c.IdleTimeout {
		errs = append(errs, errors.New("ping_interval must be shorter than idle_timeout"))
	}
	if _, _, err := c.ValkeyAddrs(); err != nil {
		errs = append(errs, err)
	}
	if !c.ValkeyTLS && (c.ValkeyTLSCA != "" || c.ValkeyTLSServerName != "" || c.ValkeyTLSCert != "" || c.ValkeyTLSKey != "") {
		errs = append(errs, errors.New("valkey_tls_ca, valkey_tls_server_name, valkey_tls_cert and valkey_tls_key need valkey_tls = true"))
	}
	if (c.ValkeyTLSCert == "") != (c.ValkeyTLSKey == "") {
		errs = append(errs, errors.New("valkey_tls_cert and valkey_tls_key go together"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// ValkeyAddrs returns the Valkey addresses to connect to and whether they are cluster seeds.
// No addresses means no Valkey.
func (c *Config) ValkeyAddrs() (addrs []string, cluster bool, err error) {
	return valkeyconn.Addrs(c.Valkey, c.ValkeyCluster)
}

// ValkeyConn is how to reach the configured Valkey; its Addrs are empty when none is.
func (c *Config) ValkeyConn() valkeyconn.Config {
	addrs, cluster, _ := c.ValkeyAddrs() // checked by Validate
	return valkeyconn.Config{
		Addrs: addrs, Cluster: cluster, Username: c.ValkeyUsername, PasswordEnv: c.ValkeyPasswordEnv,
		TLS: c.ValkeyTLS, TLSCA: c.ValkeyTLSCA, TLSServerName: c.ValkeyTLSServerName,
		TLSCert: c.ValkeyTLSCert, TLSKey: c.ValkeyTLSKey,
	}
}

// OutageShare is lease.Config.OutageNodes: 0 for outage_policy "closed".
func (c *Config) OutageShare() int {
	if c.OutagePolicy == "share" {
		return c.OutageNodes
	}
	return 0
}

// PlanLimits returns each plan's concurrency.
func (c *Config) PlanLimits() map[string]int {
	m := make(map[string]int, len(c.Plans))
	for name, p := range c.Plans {
		m[name] = p.Concurrency
	}
	return m
}
