package server

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"time"

	"go.lsp.dev/protocol"
)

// progressEvery is the shortest time between two progress reports.
const progressEvery = 200 * time.Millisecond

// createTimeout bounds the wait for window/workDoneProgress/create's answer.
const createTimeout = 2 * time.Second

// progress reports one run's work-done progress ($/progress begin, report, end) on a token
// the client gave or the server created (window/workDoneProgress/create). The user can cancel
// it (window/workDoneProgress/cancel), which ends the context beginProgress returned. A zero
// progress, for clients without progress support, does nothing.
type progress struct {
	s      *Server
	token  protocol.ProgressToken
	key    string
	cancel context.CancelFunc

	mu    sync.Mutex
	last  time.Time
	ended bool
}

// beginProgress starts progress titled title, saying msg. token is the client's work-done
// token, or nil for one the server creates when the client supports that.
func (s *Server) beginProgress(ctx context.Context, token protocol.ProgressToken, title, msg string) (context.Context, *progress) {
	pctx, cancel := context.WithCancel(ctx)
	p := &progress{s: s, cancel: cancel}
	if token == nil {
		s.mu.Lock()
		ok := s.caps.Window != nil && s.caps.Window.WorkDoneProgress != nil && *s.caps.Window.WorkDoneProgress
		s.nextToken++
		n := s.nextToken
		s.mu.Unlock()
		if !ok {
			return pctx, p
		}
		token = protocol.String("codingplan-" + strconv.Itoa(n))
		// A client that does not answer must not hold the run up.
		cctx, cancelCreate := context.WithTimeout(ctx, createTimeout)
		err := s.call(cctx, protocol.MethodWindowWorkDoneProgressCreate, &protocol.WorkDoneProgressCreateParams{Token: token}, nil)
		cancelCreate()
		if err != nil {
			s.log.Debug("progress not created", "err", err)
			return pctx, p
		}
	}
	p.token, p.key = token, tokenKey(token)
	s.mu.Lock()
	s.runs[p.key] = cancel
	s.mu.Unlock()
	yes := true
	s.sendProgress(ctx, token, &protocol.WorkDoneProgressBegin{Kind: "begin", Title: title, Cancellable: &yes, Message: &msg})
	return pctx, p
}

// report sends a progress message, at most every progressEvery.
func (p *progress) report(msg string) { p.send(msg, false) }

// reportNow sends a progress message that must not be dropped: a change of step.
func (p *progress) reportNow(msg string) { p.send(msg, true) }

func (p *progress) send(msg string, now bool) {
	if p.token == nil {
		return
	}
	p.mu.Lock()
	t := time.Now()
	if p.ended || (!now && t.Sub(p.last) < progressEvery) {
		p.mu.Unlock()
		return
	}
	p.last = t
	p.mu.Unlock()
	p.s.sendProgress(context.Background(), p.token, &protocol.WorkDoneProgressReport{Kind: "report", Message: &msg})
}

// end ends the progress with msg; only the first call counts.
func (p *progress) end(msg string) {
	p.mu.Lock()
	ended := p.ended
	p.ended = true
	p.mu.Unlock()
	if ended {
		return
	}
	p.cancel()
	if p.token == nil {
		return
	}
	p.s.mu.Lock()
	delete(p.s.runs, p.key)
	p.s.mu.Unlock()
	p.s.sendProgress(context.Background(), p.token, &protocol.WorkDoneProgressEnd{Kind: "end", Message: &msg})
}

// progressCancel handles window/workDoneProgress/cancel: the user cancelled a run.
func (s *Server) progressCancel(_ context.Context, raw json.RawMessage) error {
	var p protocol.WorkDoneProgressCancelParams
	if err := decodeParams("window/workDoneProgress/cancel", raw, &p); err != nil {
		return err
	}
	s.mu.Lock()
	cancel := s.runs[tokenKey(p.Token)]
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	return nil
}

// sendProgress sends $/progress with value, a WorkDoneProgressBegin, Report or End.
func (s *Server) sendProgress(ctx context.Context, token protocol.ProgressToken, value any) {
	raw, err := protocol.Marshal(value)
	if err != nil {
		s.log.Debug("progress not encoded", "err", err)
		return
	}
	s.notify(ctx, protocol.MethodProgress, &protocol.ProgressParams{Token: token, Value: raw})
}

// tokenKey maps a progress token to its key in Server.runs.
func tokenKey(t protocol.ProgressToken) string {
	switch t := t.(type) {
	case protocol.Integer:
		return "n:" + strconv.Itoa(int(t))
	case protocol.String:
		return "s:" + string(t)
	}
	return ""
}
