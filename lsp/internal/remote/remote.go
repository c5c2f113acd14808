// Package remote is the language server's websocket client: one connection to the backend that
// carries every stream, authenticated with a bearer token, kept alive with pings, re-established
// with exponential backoff and jitter, drained on goaway, and re-authenticated in band when the
// token changes.
//
// Run owns the connection; Stream sends one request on it and relays the answer. A request made
// while there is no connection fails at once with ErrDisconnected or ErrSignedOut rather than
// waiting, so an editor never piles up spinners; only right after start-up or a sign-in does
// Stream wait briefly (Config.ConnectWait) for the connection being set up.
//
// Status reports the connection's state for status bars; Watch tells of each change.
package remote

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/codingplan/codingplan/lsp/internal/erase"
	"github.com/codingplan/codingplan/lsp/internal/lspx"
	wire "github.com/codingplan/codingplan/shared"
	"github.com/codingplan/codingplan/shared/clock"
)

// Errors a Stream returns without a server's answer. Both are retryable in the sense that the
// same request may succeed once the connection is back.
var (
	// ErrDisconnected: there is no connection to the backend, or it broke during the stream.
	ErrDisconnected = errors.New("remote: not connected to the backend")
	// ErrSignedOut: there is no token, or the backend refused it.
	ErrSignedOut = errors.New("remote: signed out")
)

// Status is the connection's state as a status bar shows it. It marshals as the
// codingplan/status notification (without "enabled", which the server adds).
type Status struct {
	State        string // one of lspx's State* values
	Message      string
	Reason       string // one of lspx's Reason* values when the state needs the user
	RetryAfterMS int64  // when it changes by itself (a rate limit ends, a reconnect is due)
	Plan         *Plan
	// Models are the models the last hello listed, with the ops each serves and whether it
	// loads; nil when the backend did not say (not connected yet, or an older backend).
	Models []wire.Model
}

// Plan is the caller's plan as the backend last reported it (wire.Plan).
type Plan struct {
	Name        string
	Concurrency int
	InUse       int
}

// Config configures a Client. Zero durations take the defaults in their comments.
type Config struct {
	// URL is the backend's websocket endpoint, e.g. ws://127.0.0.1:8787/v1/ws.
	URL string
	// Token is the bearer token; empty means signed out until SetToken.
	Token wire.Secret
	// Version goes into the User-Agent header as codingplan-lsp/<Version>.
	Version string
	// Transport is how connections are secured until SetTransport.
	Transport Transport
	// Proxy chooses the proxy of a dial; nil: http.ProxyFromEnvironment (HTTPS_PROXY for
	// wss://, HTTP_PROXY for ws://, NO_PROXY; never for loopback hosts).
	Proxy func(*http.Request) (*url.URL, error)

	DialTimeout  time.Duration // connect and read the hello frame; 10s
	MinBackoff   time.Duration // first reconnect delay; 250ms
	MaxBackoff   time.Duration // longest reconnect delay; 30s
	AuthRetry    time.Duration // delay after the backend refused the token, unless it changes; 10m
	ConnectWait  time.Duration // how long Stream waits for a connection being set up; 2s
	PingInterval time.Duration // websocket ping period; 20s
	ReadTimeout  time.Duration // the connection is dead after this long without a frame or pong; 50s
	WriteTimeout time.Duration // deadline of each write; 10s
	DrainTimeout time.Duration // how long streams may finish on a connection after goaway; 60s
	// BusyAfter is how long a stream runs before the status says busy; 250ms. A completion
	// answered sooner changes no status, so it costs no notification.
	BusyAfter time.Duration
	// Clock measures and schedules (reconnect delays, pings, timeouts, the status's timer);
	// connection deadlines stay on the real clock, which the network stack reads. nil: the
	// real clock.
	Clock clock.Clock
}

func (cfg *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.DialTimeout, 10*time.Second)
	def(&cfg.MinBackoff, 250*time.Millisecond)
	def(&cfg.MaxBackoff, 30*time.Second)
	def(&cfg.AuthRetry, 10*time.Minute)
	def(&cfg.ConnectWait, 2*time.Second)
	def(&cfg.PingInterval, 20*time.Second)
	def(&cfg.ReadTimeout, 50*time.Second)
	def(&cfg.WriteTimeout, 10*time.Second)
	def(&cfg.DrainTimeout, 60*time.Second)
	def(&cfg.BusyAfter, 250*time.Millisecond)
	if cfg.Proxy == nil {
		cfg.Proxy = http.ProxyFromEnvironment
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = cfg.MinBackoff
	}
	cfg.Clock = clock.OrReal(cfg.Clock)
}

// maxServerFrame bounds a frame read from the backend.
const maxServerFrame = 4 << 20

// Client is the connection to the backend. Its methods are safe for concurrent use.
type Client struct {
	cfg    Config
	log    *slog.Logger
	dialer websocket.Dialer

	running atomic.Bool
	wake    chan struct{} // token or URL changed: Run looks again
	notify  chan struct{} // status may have changed: the notifier looks again
	connWG  sync.WaitGroup

	refusedFn atomic.Pointer[func(wire.Secret, wire.Code)] // OnRefused's

	watchMu  sync.Mutex // held while the watchers are called, so a stopped one is not called after
	watchers map[int]func(Status)
	watchSeq int

	mu        sync.Mutex
	url       string
	transport Transport
	token     wire.Secret
	rejected  wire.Secret // the token the backend refused, if it is still the current one
	cur       *conn       // the connection new streams go to, nil while there is none
	conns     map[*conn]struct{}
	link      link
	starting  bool          // a connection is being set up after start or sign-in: Stream may wait
	changed   chan struct{} // closed and replaced when cur or link changes
	plan      *Plan
	models    []wire.Model         // the last hello's, nil when it listed none
	started   map[uint64]time.Time // running streams' start times, by stream number
	timer     clock.Timer          // wakes the notifier when the status changes by itself
	timerAt   time.Time            // when timer fires; zero when it is not armed
	limited   time.Time            // rate limited (or the backend unable to serve) until
	limitMsg  string
	limitOf   string // the status state while limited: rateLimited, or error
	quota     string // the quota_exceeded message, until a stream succeeds
	nextID    uint64
	lastKey   statusKey

	// pauseHook, set by tests, sees each delay Run is about to wait.
	pauseHook func(d time.Duration)
}

// link is the state of the connection itself.
type link struct {
	state   string
	message string
	reason  string // lspx.Reason*
	retryAt time.Time
}

// New returns a client; nothing happens until Run.
func New(cfg Config, log *slog.Logger) *Client {
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		cfg: cfg,
		log: log,
		dialer: websocket.Dialer{
			Proxy:            cfg.Proxy,
			HandshakeTimeout: cfg.DialTimeout,
			Subprotocols:     []string{wire.Subprotocol},
			ReadBufferSize:   16 << 10,
			WriteBufferSize:  16 << 10,
			NetDialContext:   dialWiping,
		},
		wake:      make(chan struct{}, 1),
		notify:    make(chan struct{}, 1),
		url:       cfg.URL,
		transport: cfg.Transport,
		token:     cfg.Token,
		conns:     map[*conn]struct{}{},
		changed:   make(chan struct{}),
		starting:  true,
		started:   map[uint64]time.Time{},
	}
	c.timer = cfg.Clock.AfterFunc(time.Hour, func() { c.poke(c.notify) })
	c.timer.Stop()
	c.link = c.idleLinkLocked()
	return c
}

func (c *Client) idleLinkLocked() link {
	if c.token == "" {
		return link{state: lspx.StateSignedOut, message: "signed out: sign in with a token (codingplan.signIn or CODINGPLAN_TOKEN)", reason: lspx.ReasonSignedOut}
	}
	return link{state: lspx.StateConnecting, message: "connecting to the backend"}
}

// SetToken sets the bearer token. With a connection open, the token goes to the backend in an
// auth frame; otherwise the client connects now. An empty token signs out: every connection
// closes and running streams fail with ErrSignedOut.
func (c *Client) SetToken(token wire.Secret) {
	c.mu.Lock()
	if token == c.token && c.rejected != token {
		c.mu.Unlock()
		return
	}
	c.token = token
	c.rejected = ""
	if token == "" {
		c.cur = nil
		for cn := range c.conns {
			cn.close(ErrSignedOut)
		}
		c.setLinkLocked(c.idleLinkLocked())
	} else if c.cur != nil {
		c.cur.sendAuthLocked(token)
	} else {
		c.starting = true
		c.setLinkLocked(c.idleLinkLocked())
	}
	c.mu.Unlock()
	c.poke(c.wake)
}

// OnRefused has f told, from the connection's goroutines, of each token the backend refuses
// for itself (code token_expired or unauthorized: expired, revoked, invalid), at the upgrade
// or in band, so that its owner can get a fresh one (SetToken) or ask the user to sign in
// again. f must not block.
func (c *Client) OnRefused(f func(token wire.Secret, code wire.Code)) {
	c.refusedFn.Store(&f)
}

// tellRefused calls OnRefused's function for a refusal of token with code.
func (c *Client) tellRefused(token wire.Secret, code wire.Code) {
	if code != wire.CodeTokenExpired && code != wire.CodeUnauthorized {
		return
	}
	if f := c.refusedFn.Load(); f != nil && token != "" {
		(*f)(token, code)
	}
}

// SetURL changes the backend's endpoint. Streams running on the old connection finish there;
// new ones wait for the new connection.
func (c *Client) SetURL(url string) {
	c.reconnectIf(func() bool {
		changed := url != c.url
		c.url = url
		return changed
	})
}

// reconnectIf runs set under c.mu; when it reports a change, the connection stops taking new
// streams (running ones finish on it) and Run connects again.
func (c *Client) reconnectIf(set func() bool) {
	c.mu.Lock()
	if !set() {
		c.mu.Unlock()
		return
	}
	if c.cur != nil {
		c.cur.drainLocked()
		c.cur = nil
	}
	c.starting = true
	c.setLinkLocked(c.idleLinkLocked())
	c.mu.Unlock()
	c.poke(c.wake)
}

// Retry cuts the wait before the next connection attempt short (the user's "Retry now"); it
// does nothing while connected.
func (c *Client) Retry() { c.poke(c.wake) }

// DefaultModel is the model a request without one gets, as the backend's last hello named it
// (its models' default; "" before the first hello, or from a backend that does not say).
func (c *Client) DefaultModel() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.models {
		if m.Default {
			return m.Name
		}
	}
	return ""
}

// Status returns the current status.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, _, _ := c.statusLocked(c.cfg.Clock.Now())
	return s
}

// Run connects and keeps the connection up until ctx ends, then closes every connection and
// waits for their goroutines. It returns nil when ctx ends; it is an error to call it twice.
func (c *Client) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("remote: Run called twice")
	}
	var wg sync.WaitGroup
	wg.Go(func() { erase.Do(func() { c.notifyLoop(ctx) }) })
	defer func() {
		c.mu.Lock()
		c.cur = nil
		for cn := range c.conns {
			cn.close(ErrDisconnected)
		}
		c.mu.Unlock()
		c.connWG.Wait()
		wg.Wait()
	}()

	attempt := 0
	for ctx.Err() == nil {
		c.mu.Lock()
		url, token, transport := c.url, c.token, c.transport
		rejected := token != "" && token == c.rejected
		if token == "" {
			c.setLinkLocked(c.idleLinkLocked())
		}
		c.mu.Unlock()
		if token == "" {
			c.pause(ctx, -1)
			continue
		}
		if url == "" {
			c.setLink(link{state: lspx.StateError, message: "no backend URL: set codingplan.backendUrl to a ws:// or wss:// URL", reason: lspx.ReasonNoBackendURL})
			c.pause(ctx, -1)
			continue
		}
		if why := transport.refuses(url); why != "" {
			c.mu.Lock()
			c.starting = false
			c.setLinkLocked(link{state: lspx.StateError, message: why, reason: lspx.ReasonNoBackendURL})
			c.mu.Unlock()
			c.pause(ctx, -1)
			continue
		}
		if rejected {
			// The backend refused this token; try it again only now and then.
			c.pause(ctx, c.cfg.AuthRetry)
			c.mu.Lock()
			if c.token == token && c.rejected == token {
				c.rejected = "" // retry once; a new refusal sets it again
			}
			c.mu.Unlock()
			continue
		}
		c.mu.Lock()
		if c.link.state != lspx.StateConnecting || !c.link.retryAt.IsZero() {
			c.setLinkLocked(link{state: lspx.StateConnecting, message: "connecting to the backend"})
		}
		c.mu.Unlock()

		out := c.session(ctx, url, token, transport)
		if ctx.Err() != nil {
			break
		}
		var delay time.Duration
		switch {
		case out.replaced:
			attempt = 0
			continue
		case out.authFailed:
			c.mu.Lock()
			if c.token == token {
				c.rejected = token
			}
			c.starting = false
			c.setLinkLocked(link{state: out.state, message: out.message, reason: out.reason})
			c.mu.Unlock()
			c.tellRefused(token, out.code)
			attempt = 0
			continue
		case out.goaway:
			attempt = 0
			delay = out.retryAfter + jitter(out.retryAfter/10)
			c.setLink(link{state: lspx.StateConnecting, message: "the backend asked to reconnect", retryAt: c.cfg.Clock.Now().Add(delay)})
		case out.connected && c.refused(token):
			// The backend refused the token in-band (revoked, expired) before closing: the
			// status it set stands, and the token is tried again only after AuthRetry.
			attempt = 0
			continue
		case out.connected:
			attempt = 0
			delay = jitter(c.cfg.MinBackoff)
			c.setLink(link{state: lspx.StateConnecting, message: "connection lost; reconnecting", retryAt: c.cfg.Clock.Now().Add(delay)})
		default:
			delay = c.backoff(attempt)
			attempt++
			if out.retryAfter > delay { // the backend's Retry-After (429, 503): never sooner
				delay = out.retryAfter + jitter(out.retryAfter/10)
			}
			l := link{
				state:   lspx.StateError,
				message: fmt.Sprintf("cannot reach the backend (%s); retrying in %s", out.message, delay.Round(time.Millisecond)),
				reason:  cmp.Or(out.reason, lspx.ReasonUnreachable),
				retryAt: c.cfg.Clock.Now().Add(delay),
			}
			if out.state == lspx.StateRateLimited {
				l.state = out.state
				l.message = fmt.Sprintf("the backend refused the connection: %s; retrying in %s", out.message, delay.Round(time.Second))
			}
			c.mu.Lock()
			c.starting = false
			c.setLinkLocked(l)
			c.mu.Unlock()
		}
		c.pause(ctx, delay)
	}
	return nil
}

// refused reports whether token is the current token and the backend refused it.
func (c *Client) refused(token wire.Secret) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return token != "" && c.token == token && c.rejected == token
}

// backoff is the delay before reconnect attempt n (0-based): exponential, capped, with jitter
// over its upper half.
func (c *Client) backoff(n int) time.Duration {
	d := c.cfg.MinBackoff
	for i := 0; i < n && d < c.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, c.cfg.MaxBackoff)
	return d/2 + jitter(d/2)
}

// jitter returns a random duration in [0, d].
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d + 1)
}

// pause waits d (forever when d < 0), until a token or URL change, or until ctx ends.
func (c *Client) pause(ctx context.Context, d time.Duration) {
	if c.pauseHook != nil {
		c.pauseHook(d)
	}
	var timeout <-chan time.Time
	if d >= 0 {
		t, expired := c.cfg.Clock.NewTimer(d)
		defer t.Stop()
		timeout = expired
	}
	select {
	case <-ctx.Done():
	case <-c.wake:
	case <-timeout:
	}
}

func (c *Client) poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// outcome is how one session ended.
type outcome struct {
	connected  bool // the backend said hello
	replaced   bool // the URL or token changed: connect again now
	goaway     bool
	retryAfter time.Duration // after goaway: when to reconnect; after a refused dial: not sooner
	authFailed bool
	code       wire.Code // for authFailed: the backend's reason
	state      string    // for authFailed; lspx.StateRateLimited for a 429
	reason     string    // lspx.Reason*, when the user needs to know
	message    string    // what went wrong, no content
}

// session dials, waits for hello and serves the connection until it ends or stops taking new
// streams.
func (c *Client) session(ctx context.Context, url string, token wire.Secret, transport Transport) outcome {
	dialer := c.dialer
	tlsConf, err := transport.tlsConfig()
	if err != nil {
		return outcome{message: err.Error()}
	}
	dialer.TLSClientConfig = tlsConf
	header := http.Header{}
	header.Set("Authorization", "Bearer "+string(token))
	if c.cfg.Version != "" {
		header.Set("User-Agent", "codingplan-lsp/"+c.cfg.Version)
	}
	dctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	ws, resp, err := dialer.DialContext(dctx, url, header)
	cancel()
	if err != nil {
		return c.dialFailure(err, resp)
	}
	ws.SetReadLimit(maxServerFrame)
	_ = ws.SetReadDeadline(time.Now().Add(c.cfg.DialTimeout))
	_, data, err := ws.ReadMessage()
	if err != nil {
		_ = ws.Close()
		return outcome{message: "no hello from the backend: " + err.Error()}
	}
	hello, err := wire.DecodeServer(data)
	if err == nil && hello.Type == wire.TypeError {
		_ = ws.Close()
		return authOutcome(hello.AsError())
	}
	if err != nil || hello.Type != wire.TypeHello {
		_ = ws.Close()
		return outcome{message: "the backend did not start with hello"}
	}
	if hello.Protocol != 0 && hello.Protocol != wire.Version {
		_ = ws.Close()
		return outcome{message: fmt.Sprintf("the backend speaks protocol %d, this client %d", hello.Protocol, wire.Version), reason: lspx.ReasonProtocol}
	}
	_ = ws.SetReadDeadline(time.Now().Add(c.cfg.ReadTimeout))

	cn := newConn(c, ws, token, hello.Limits)
	c.mu.Lock()
	c.conns[cn] = struct{}{}
	c.cur = cn
	c.starting = false
	c.updatePlanLocked(hello.Plan)
	c.updateModelsLocked(hello.Models)
	if c.token != token && c.token != "" {
		cn.sendAuthLocked(c.token) // the token changed while dialing
	}
	c.setLinkLocked(link{state: lspx.StateReady, message: "connected"})
	c.mu.Unlock()
	c.connWG.Add(2)
	go erase.Do(cn.readLoop) // the output it reads is erased once freed (see erase)
	go erase.Do(cn.writeLoop)
	c.log.Debug("connected to the backend", "server", hello.Server)

	for {
		select {
		case <-ctx.Done():
			cn.close(ErrDisconnected)
			return outcome{connected: true}
		case <-cn.dead:
			c.mu.Lock()
			if c.cur == cn {
				c.cur = nil
			}
			c.mu.Unlock()
			return outcome{connected: true, message: "connection lost"}
		case d := <-cn.goaway:
			c.mu.Lock()
			if c.cur == cn {
				c.cur = nil
				c.broadcastLocked()
			}
			c.mu.Unlock()
			return outcome{connected: true, goaway: true, retryAfter: d}
		case <-c.wake:
			c.mu.Lock()
			same := c.url == url && c.cur == cn
			c.mu.Unlock()
			if !same {
				return outcome{replaced: true}
			}
		}
	}
}

// dialFailure classifies a failed dial. A 401 or 403 is a refused token, with the JSON body's
// message when it has one; a 429 is a connection limit (see rateLimited). Any refusal's
// Retry-After is kept: the next dial waits at least that long.
func (c *Client) dialFailure(err error, resp *http.Response) outcome {
	if resp == nil {
		return outcome{message: dialProblem(err)}
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
	case http.StatusTooManyRequests:
		e := refusal(resp, &wire.Error{Code: wire.CodeRateLimited, Message: "too many connections"})
		return outcome{state: lspx.StateRateLimited, reason: lspx.ReasonRateLimited, message: e.Message,
			retryAfter: max(c.retryAfter(resp), time.Second)}
	default:
		return outcome{message: fmt.Sprintf("HTTP %d at the upgrade", resp.StatusCode), retryAfter: c.retryAfter(resp)}
	}
	e := refusal(resp, &wire.Error{Code: wire.CodeUnauthorized, Message: "the backend refused the token"})
	if resp.StatusCode == http.StatusForbidden && e.Code == wire.CodeUnauthorized {
		out := authOutcome(e)
		out.state, out.code = lspx.StateError, "" // the Origin, not the token: no refresh helps
		return out
	}
	return authOutcome(e)
}

// refusal reads a refused upgrade's JSON body into e: its code when known, its message.
func refusal(resp *http.Response, e *wire.Error) *wire.Error {
	var body struct {
		Code    wire.Code `json:"code"`
		Message string    `json:"message"`
		Error   string    `json:"error"`
	}
	if resp.Body != nil && json.NewDecoder(resp.Body).Decode(&body) == nil {
		if body.Code.Known() {
			e.Code = body.Code
		}
		if msg := firstNonEmpty(body.Message, body.Error); msg != "" {
			e.Message = wire.Clip(msg, clipMessage)
		}
	}
	return e
}

// retryAfter is resp's Retry-After; 0 without one.
func (c *Client) retryAfter(resp *http.Response) time.Duration {
	return wire.RetryAfter(resp.Header.Get("Retry-After"), c.cfg.Clock.Now())
}

// authOutcome is the outcome of a connection refused for its token.
func authOutcome(e *wire.Error) outcome {
	out := outcome{authFailed: true, code: e.Code, state: lspx.StateSignedOut, message: "signed out: " + e.Message, reason: lspx.ReasonTokenRejected}
	switch e.Code {
	case wire.CodeTokenExpired:
		out.state, out.message, out.reason = lspx.StateError, "token expired, sign in again", lspx.ReasonTokenExpired
	case wire.CodeUnauthorized:
	case wire.CodeQuotaExceeded:
		out.state, out.message, out.reason = lspx.StateError, "subscription inactive: "+e.Message, lspx.ReasonSubscriptionInactive
	default:
		out.state, out.message, out.reason = lspx.StateError, e.Error(), ""
	}
	return out
}

func dialProblem(err error) string {
	msg := err.Error()
	// Dial errors name the address, not content; keep them short.
	if i := strings.LastIndex(msg, ": "); i >= 0 && len(msg) > 120 {
		msg = msg[i+2:]
	}
	return wire.Clip(msg, clipMessage)
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// clipMessage is how much of a message from the backend or the network the status and the
// log quote (see wire.Clip).
const clipMessage = 200
