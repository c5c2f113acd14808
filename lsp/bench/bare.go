package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"strconv"
	"time"
)

// ServeBare is the smallest Go language server that answers the benchmark's requests: it reads
// Content-Length frames from r, decodes each message once, answers every completion and inline
// completion at once with one fixed suggestion (no document state, no backend), and writes each
// response in one write to w. It returns when the input ends or after exit.
//
// The benchmark times it as a component: what one stdio hop between two Go processes costs on
// this machine, so that the full chain's miss minus the backend's websocket round trip minus
// this is codingplan-lsp's own share.
func ServeBare(r io.Reader, w io.Writer) error {
	tp := textproto.NewReader(bufio.NewReaderSize(r, 64<<10))
	for {
		h, err := tp.ReadMIMEHeader()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		n, err := strconv.Atoi(h.Get("Content-Length"))
		if err != nil || n < 0 {
			return fmt.Errorf("bare: bad Content-Length %q", h.Get("Content-Length"))
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(tp.R, body); err != nil {
			return err
		}
		var m struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		if err := json.Unmarshal(body, &m); err != nil {
			return fmt.Errorf("bare: %w", err)
		}
		if m.Method == "exit" {
			return nil
		}
		if len(m.ID) == 0 || m.Method == "" {
			continue // a notification, or a response to nothing we asked
		}
		if _, err := w.Write(bareFrame(m.ID, bareResult(m.Method))); err != nil {
			return err
		}
	}
}

// bareResult is the JSON result of a request to the bare server.
func bareResult(method string) string {
	switch method {
	case "initialize":
		return `{"capabilities":{"textDocumentSync":2,"completionProvider":{},"inlineCompletionProvider":{}},"serverInfo":{"name":"bare"}}`
	case MethodInlineCompletion:
		return `{"items":[{"insertText":"total, 1)"}]}`
	case MethodCompletion:
		return `{"isIncomplete":true,"items":[{"label":"total, 1)","insertText":"total, 1)"}]}`
	}
	return "null"
}

func bareFrame(id json.RawMessage, result string) []byte {
	body := `{"jsonrpc":"2.0","id":` + string(id) + `,"result":` + result + `}`
	return []byte("Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}

// NewBareProbe starts exe (a binary that runs ServeBare on its stdio: lspbench -serve-bare)
// with env and returns a probe that times an inline completion request after a didChange that
// makes a new context, as the full chain's miss is timed.
func NewBareProbe(ctx context.Context, name, exe string, args, env []string, stderrPath, rootURI string) (*Probe, error) {
	srv, err := StartServer(ServerSpec{Name: name, Path: exe, Args: args, Env: env, StderrPath: stderrPath})
	if err != nil {
		return nil, err
	}
	if _, err := srv.Initialize(ctx, InitParams(rootURI, true, nil)); err != nil {
		srv.Close()
		return nil, err
	}
	doc := NewDoc(rootURI + "/bare.go")
	if err := doc.Open(srv.Client); err != nil {
		srv.Close()
		return nil, err
	}
	p := &Probe{Name: name, close: func() { _ = srv.Close() }}
	p.timed = func(ctx context.Context, _ int) (time.Duration, error) {
		pos, err := doc.NewContext(srv.Client)
		if err != nil {
			return 0, err
		}
		res, err := srv.Client.Call(ctx, MethodInlineCompletion, RequestParams(MethodInlineCompletion, doc.URI, pos))
		if err != nil {
			return 0, err
		}
		if n, err := CountItems(res.Raw); err != nil || n == 0 {
			return 0, fmt.Errorf("bare: no suggestion (%v)", err)
		}
		return res.Latency, nil
	}
	return p, nil
}
