package lsplog

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"go.lsp.dev/protocol"
)

type sent struct {
	typ protocol.MessageType
	msg string
}

func TestHandler(t *testing.T) {
	var fallback bytes.Buffer
	h := New(slog.NewTextHandler(&fallback, nil), slog.LevelDebug)
	log := slog.New(h).With("part", "remote").WithGroup("g")

	log.Info("before attach", "k", 1)
	var got []sent
	fail := false
	detach := h.Attach(func(_ context.Context, typ protocol.MessageType, msg string) error {
		if fail {
			return errors.New("closed")
		}
		got = append(got, sent{typ, msg})
		return nil
	})
	log.Debug("d", "k", 1)
	log.Info("i")
	log.Warn("w")
	log.Error("e", "err", "boom")
	fail = true
	log.Info("not sent")
	fail = false
	detach()
	log.Info("after detach")

	want := []sent{
		{protocol.MessageTypeDebug, "msg=d part=remote g.k=1"},
		{protocol.MessageTypeInfo, "msg=i part=remote"},
		{protocol.MessageTypeWarning, "msg=w part=remote"},
		{protocol.MessageTypeError, "msg=e part=remote g.err=boom"},
	}
	if len(got) != len(want) {
		t.Fatalf("sent %+v\nwant %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("message %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	for _, line := range []string{`msg="before attach"`, `msg="not sent"`, `msg="after detach"`} {
		if !strings.Contains(fallback.String(), line) {
			t.Errorf("fallback lacks %s:\n%s", line, fallback.String())
		}
	}
	if strings.Contains(fallback.String(), "msg=i ") {
		t.Errorf("a sent record reached the fallback:\n%s", fallback.String())
	}
}

func TestLevelFilter(t *testing.T) {
	h := New(slog.DiscardHandler, slog.LevelWarn)
	if h.Enabled(context.Background(), slog.LevelInfo) || !h.Enabled(context.Background(), slog.LevelWarn) {
		t.Error("Enabled does not follow the level")
	}
	// The fallback's own level applies: stderr may take warnings only.
	var fallback bytes.Buffer
	log := slog.New(New(slog.NewTextHandler(&fallback, &slog.HandlerOptions{Level: slog.LevelWarn}), slog.LevelDebug))
	log.Info("quiet")
	log.Warn("loud")
	if got := fallback.String(); strings.Contains(got, "quiet") || !strings.Contains(got, "loud") {
		t.Errorf("fallback got %q", got)
	}
}
