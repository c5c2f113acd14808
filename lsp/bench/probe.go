package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	wire "github.com/codingplan/codingplan/shared"
)

// Probe measures one component of the chain on its own, to find where the time of the full
// chain goes: the provider over HTTP, or the backend over its websocket without the language
// server.
type Probe struct {
	Name string
	Role ProbeRole
	once func(ctx context.Context, n int) error
	// timed, when set instead of once, times the call itself (the part on the wire).
	timed   func(ctx context.Context, n int) (time.Duration, error)
	close   func()
	Samples []time.Duration
	Errors  int
	next    int
}

// Measure runs n timed calls, each with a prompt no call has used; with record false it
// keeps nothing.
func (p *Probe) Measure(ctx context.Context, n int, timeout time.Duration, record bool) error {
	for range n {
		if err := ctx.Err(); err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		p.next++
		d, err := p.call(cctx, p.next)
		cancel()
		switch {
		case err != nil && record:
			p.Errors++
		case err != nil:
			return fmt.Errorf("%s: %w", p.Name, err)
		case record:
			p.Samples = append(p.Samples, d)
		}
	}
	return nil
}

func (p *Probe) call(ctx context.Context, n int) (time.Duration, error) {
	if p.timed != nil {
		return p.timed(ctx, n)
	}
	start := time.Now()
	err := p.once(ctx, n)
	return time.Since(start), err
}

// ProbeRole says which part of the full chain a probe stands for, when it is one the report
// subtracts from the chain's miss to find codingplan-lsp's own share.
type ProbeRole int

const (
	RoleOther   ProbeRole = iota
	RoleBackend           // a websocket client to the backend with the run's limiter, to done
	RoleStdio             // a bare Go stdio language server that answers at once
)

// Close releases the probe's connection.
func (p *Probe) Close() {
	if p.close != nil {
		p.close()
	}
}

// probePrefix is the text before the cursor of context n, as the language server would send it.
func probePrefix(n int) string {
	return strings.Join(docHead, "\n") + "\n" + cursorLine(n)
}

// NewProviderProbe posts streaming chat completions to the provider (an OpenAI-compatible base
// URL without /v1) and reads each reply to its end, over one kept-alive connection.
func NewProviderProbe(baseURL, model string) *Probe {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	url := strings.TrimSuffix(baseURL, "/") + "/v1/chat/completions"
	return &Probe{
		Name: "provider alone (HTTP, streamed)",
		once: func(ctx context.Context, n int) error {
			body, _ := json.Marshal(map[string]any{
				"model": model, "stream": true, "max_tokens": 64,
				"messages": []map[string]string{{"role": "user", "content": probePrefix(n)}},
			})
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
			if err != nil {
				return err
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				return err
			}
			if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte("[DONE]")) {
				return fmt.Errorf("provider: %s without [DONE]", resp.Status)
			}
			return nil
		},
		close: client.CloseIdleConnections,
	}
}

// NewBackendProbe dials the backend's websocket with token and returns a probe that sends one
// completion request at a time and waits for its done frame.
func NewBackendProbe(ctx context.Context, name, wsURL, token string) (*Probe, error) {
	d := websocket.Dialer{Subprotocols: []string{wire.Subprotocol}, HandshakeTimeout: 10 * time.Second}
	h := http.Header{"Authorization": {"Bearer " + token}}
	conn, resp, err := d.DialContext(ctx, wsURL, h)
	if err != nil {
		if resp != nil {
			err = fmt.Errorf("%w (%s)", err, resp.Status)
		}
		return nil, fmt.Errorf("dialing the backend: %w", err)
	}
	if _, _, err := conn.ReadMessage(); err != nil { // hello
		conn.Close()
		return nil, fmt.Errorf("reading the hello frame: %w", err)
	}
	p := &Probe{Name: name, close: func() { conn.Close() }}
	p.once = func(ctx context.Context, n int) error {
		id := "b" + strconv.Itoa(n)
		frame, err := wire.Marshal(wire.ClientFrame{
			Type: wire.TypeRequest, ID: id, Op: wire.OpCompletion, MaxTokens: 64,
			Completion: &wire.Completion{Prefix: wire.Text(probePrefix(n)), Suffix: wire.Text("\n" + strings.Join(docTail, "\n")), Language: "go", Path: "probe.go"},
		})
		if err != nil {
			return err
		}
		if dl, ok := ctx.Deadline(); ok {
			_ = conn.SetReadDeadline(dl)
		}
		if err := conn.WriteMessage(websocket.TextMessage, frame); err != nil {
			return err
		}
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				return err
			}
			f, err := wire.DecodeServer(data)
			if err != nil {
				return err
			}
			if f.ID != id {
				continue
			}
			switch f.Type {
			case wire.TypeDone:
				return nil
			case wire.TypeError:
				return errors.New("backend error frame: " + string(f.Code))
			}
		}
	}
	return p, nil
}
