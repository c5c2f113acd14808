// Package lsplog sends the language server's log to the editor as window/logMessage
// notifications, each with the MessageType of its record's level, so that editors file every
// line at its real level: Neovim writes a server's stderr to its lsp.log as [ERROR] lines and
// VS Code labels it [error], whatever the line says. While no editor is attached (before the
// session starts, after it ends, or when a notification cannot be sent) records go to a
// fallback handler (stderr).
package lsplog

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"go.lsp.dev/protocol"
)

// Send delivers one log message to the editor (a window/logMessage notification).
type Send func(ctx context.Context, typ protocol.MessageType, message string) error

// Handler is a slog.Handler; Attach connects it to an editor.
type Handler struct {
	level    slog.Leveler
	fallback slog.Handler
	sink     *sink
	ops      []func(slog.Handler) slog.Handler // WithAttrs and WithGroup, in order
}

type sink struct {
	mu   sync.Mutex
	send Send
}

// New returns a Handler for records at level and above, writing to fallback while no editor
// is attached.
func New(fallback slog.Handler, level slog.Leveler) *Handler {
	return &Handler{level: level, fallback: fallback, sink: &sink{}}
}

// Attach sends records to send until detach is called.
func (h *Handler) Attach(send Send) (detach func()) {
	h.sink.mu.Lock()
	h.sink.send = send
	h.sink.mu.Unlock()
	return func() {
		h.sink.mu.Lock()
		h.sink.send = nil
		h.sink.mu.Unlock()
	}
}

// Enabled implements slog.Handler.
func (h *Handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

// Handle implements slog.Handler: the record as a text line without time and level (the
// editor adds its own time, the MessageType carries the level).
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	h.sink.mu.Lock()
	send := h.sink.send
	h.sink.mu.Unlock()
	if send == nil {
		return h.toFallback(ctx, r)
	}
	var buf bytes.Buffer
	var text slog.Handler = slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: dropTimeLevel})
	for _, op := range h.ops {
		text = op(text)
	}
	if err := text.Handle(ctx, r); err != nil {
		return err
	}
	if err := send(context.WithoutCancel(ctx), Type(r.Level), strings.TrimSuffix(buf.String(), "\n")); err != nil {
		return h.toFallback(ctx, r)
	}
	return nil
}

// toFallback hands r to the fallback if its own level lets it through.
func (h *Handler) toFallback(ctx context.Context, r slog.Record) error {
	if !h.fallback.Enabled(ctx, r.Level) {
		return nil
	}
	return h.fallback.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	return h.with(h.fallback.WithAttrs(as), func(x slog.Handler) slog.Handler { return x.WithAttrs(as) })
}

// WithGroup implements slog.Handler.
func (h *Handler) WithGroup(name string) slog.Handler {
	return h.with(h.fallback.WithGroup(name), func(x slog.Handler) slog.Handler { return x.WithGroup(name) })
}

func (h *Handler) with(fallback slog.Handler, op func(slog.Handler) slog.Handler) *Handler {
	c := *h
	c.fallback = fallback
	c.ops = append(slices.Clip(h.ops), op)
	return &c
}

// Type is the MessageType of a level: error, warning, info, and debug (LSP 3.18's Debug,
// which editors that predate it file as a log line).
func Type(l slog.Level) protocol.MessageType {
	switch {
	case l >= slog.LevelError:
		return protocol.MessageTypeError
	case l >= slog.LevelWarn:
		return protocol.MessageTypeWarning
	case l >= slog.LevelInfo:
		return protocol.MessageTypeInfo
	}
	return protocol.MessageTypeDebug
}

func dropTimeLevel(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
		return slog.Attr{}
	}
	return a
}
