package revoke

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/valkey-io/valkey-go"
)

// Backoff between attempts to subscribe again after the subscription's connection failed.
const (
	backoffMin = 100 * time.Millisecond
	backoffMax = 5 * time.Second
)

// Handler acts on events (the gateway).
type Handler interface {
	// Handle acts on one event, in the order they arrived.
	Handle(ctx context.Context, e Event)
	// Resync runs after every subscription, the first included: events published while the
	// node was not subscribed were missed, so open connections are checked against the
	// denylist again.
	Resync(ctx context.Context)
}

// Watcher subscribes to the channel on a dedicated connection and hands what arrives to a
// Handler, subscribing again (with backoff) whenever the connection fails.
type Watcher struct {
	client  valkey.Client
	channel string
	h       Handler
	log     *slog.Logger
}

// NewWatcher returns a Watcher of prefix's channel. log may be nil.
func NewWatcher(client valkey.Client, prefix string, h Handler, log *slog.Logger) *Watcher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Watcher{client: client, channel: Channel(prefix), h: h, log: log}
}

// Run watches until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	wait, failing := backoffMin, false
	for {
		subscribed, err := w.once(ctx)
		if ctx.Err() != nil {
			return
		}
		if subscribed {
			wait, failing = backoffMin, false
		}
		// One warning per outage; the attempts that follow are debug lines.
		level := slog.LevelWarn
		if failing {
			level = slog.LevelDebug
		}
		failing = true
		w.log.Log(ctx, level, "revocations not subscribed; subscribing again", "err", err, "in_ms", wait.Milliseconds())
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, backoffMax)
	}
}

// once subscribes and serves the subscription until it fails or ctx ends; subscribed says
// whether it got as far as a confirmed subscription.
func (w *Watcher) once(ctx context.Context) (subscribed bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	dc, release := w.client.Dedicate()
	defer release()
	defer cancel() // first: unblocks a hook waiting to hand over a message
	events := make(chan Event, 64)
	confirmed := make(chan struct{}, 1)
	closed := dc.SetPubSubHooks(valkey.PubSubHooks{
		// Called on the connection's reading goroutine; blocking it only delays this
		// subscription's own messages, which Valkey buffers meanwhile.
		OnMessage: func(m valkey.PubSubMessage) {
			var e Event
			if err := json.Unmarshal([]byte(m.Message), &e); err != nil || e.Validate() != nil {
				w.log.Warn("revocation message ignored: not of the contract", "bytes", len(m.Message))
				return
			}
			select {
			case events <- e:
			case <-ctx.Done():
			}
		},
		OnSubscription: func(s valkey.PubSubSubscription) {
			if s.Kind == "subscribe" && s.Channel == w.channel {
				select {
				case confirmed <- struct{}{}:
				default:
				}
			}
		},
	})
	if err := dc.Do(ctx, dc.B().Subscribe().Channel(w.channel).Build()).Error(); err != nil {
		return false, err
	}
	for {
		select {
		case <-confirmed:
			subscribed = true
			w.log.Info("revocations subscribed", "channel", w.channel)
			w.h.Resync(ctx)
		case e := <-events:
			w.h.Handle(ctx, e)
		case err, ok := <-closed:
			if !ok || err == nil {
				err = errors.New("subscription ended")
			}
			return subscribed, err
		case <-ctx.Done():
			return subscribed, ctx.Err()
		}
	}
}
