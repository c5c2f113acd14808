// Package providertest is a fake model provider for tests: an HTTP server that speaks the
// OpenAI chat completions, OpenAI completions and Anthropic Messages streaming APIs byte for
// byte (chunk shapes, usage chunks, [DONE], Anthropic's event sequence, each API's error
// JSON), with each request's behaviour chosen by the test.
//
// A test picks the behaviour with Script, or by the model name it sends (see Behaviour),
// and waits for what the server saw with Wait instead of sleeping:
//
//	srv := providertest.New()
//	defer srv.Close()
//	srv.Script(func(r *providertest.Request) providertest.Reply {
//		return providertest.Reply{Chunks: []string{"a", "b"}}
//	})
//	... call srv.URL + "/v1/chat/completions" ...
//	ev, err := srv.Wait(ctx, providertest.Ended(1))
//
// Requests are served on POST paths ending in /chat/completions, /completions and /messages,
// so srv.URL+"/v1" works as an OpenAI base URL and srv.URL as an Anthropic one. GET /_events
// streams the event log as newline-delimited JSON, for tests in other processes.
package providertest

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
)

// APIs the server speaks, named as upstream's provider kinds.
const (
	OpenAIChat        = "openai-chat"
	OpenAICompletions = "openai-completions"
	Anthropic         = "anthropic"
)

// Server is a running fake provider.
type Server struct {
	// URL is the server's root, e.g. http://127.0.0.1:40123.
	URL string

	hs      *httptest.Server
	done    chan struct{} // closed by Close, releasing hanging handlers
	closing sync.Once
	nextID  atomic.Int64
	conns   atomic.Int64

	mu      sync.Mutex
	script  func(*Request) Reply
	def     Reply
	events  []Event
	changed chan struct{} // closed and replaced when events grows
}

// New starts a server on a loopback port.
func New() *Server {
	s := newServer()
	s.hs = httptest.NewUnstartedServer(s)
	s.start()
	return s
}

// Listen starts a server on addr ("127.0.0.1:0" picks a port), for the fakeprovider binary.
func Listen(addr string) (*Server, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := newServer()
	s.hs = &httptest.Server{Listener: l, Config: &http.Server{Handler: s}}
	s.start()
	return s, nil
}

func newServer() *Server {
	return &Server{done: make(chan struct{}), changed: make(chan struct{}), def: Reply{Chunks: DefaultChunks}}
}

func (s *Server) start() {
	s.hs.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.hs.Start()
	s.URL = s.hs.URL
}

// Close releases hanging requests, closes every connection and stops the server.
func (s *Server) Close() {
	s.closing.Do(func() { close(s.done) })
	s.hs.CloseClientConnections()
	s.hs.Close()
}

// Script makes f choose the reply to each request, overriding the model-name behaviours.
// nil restores them. f runs on the request's goroutine.
func (s *Server) Script(f func(*Request) Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = f
}

// SetDefault sets the reply to models with no behaviour of their own (initially the
// DefaultChunks, at once).
func (s *Server) SetDefault(r Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.def = r
}

// NewConns counts the TCP connections clients opened so far.
func (s *Server) NewConns() int64 { return s.conns.Load() }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == "/_events" {
		s.serveEvents(w, r)
		return
	}
	api := apiOf(r.URL.Path)
	if r.Method != http.MethodPost || api == "" {
		http.NotFound(w, r)
		return
	}
	s.serveModel(w, r, api)
}

// Event is one thing the server saw.
type Event struct {
	Kind   string `json:"kind"` // EventStart or EventEnd
	ID     int64  `json:"id"`   // the request's number, from 1
	API    string `json:"api"`
	Model  string `json:"model"`
	Reason string `json:"reason,omitempty"` // for EventEnd: one of the Reason constants
	Chunks int    `json:"chunks,omitempty"` // for EventEnd: text chunks written
}

// Event kinds.
const (
	EventStart = "start" // a model request arrived and was parsed
	EventEnd   = "end"   // the server finished with it
)

// Reasons an EventEnd gives.
const (
	ReasonDone       = "done"        // the whole stream was written, end marker included
	ReasonStatus     = "status"      // an error status was sent
	ReasonCut        = "cut"         // the reply ended the stream early on purpose (Reply.Cut)
	ReasonAbort      = "abort"       // the reply broke the connection on purpose (Reply.Abort)
	ReasonClientGone = "client-gone" // the request's context ended: the client went away
	ReasonClosed     = "closed"      // the server was closed
)

func (s *Server) record(e Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, e)
	close(s.changed)
	s.changed = make(chan struct{})
}

// Events returns every event so far.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}

// EventsSince waits until there are more than n events, and returns those after the first n.
func (s *Server) EventsSince(ctx context.Context, n int) ([]Event, error) {
	for {
		s.mu.Lock()
		if len(s.events) > n {
			out := append([]Event(nil), s.events[n:]...)
			s.mu.Unlock()
			return out, nil
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.done:
			return nil, http.ErrServerClosed
		}
	}
}

// Wait returns the first event, past or future, that match accepts, or ctx's error.
func (s *Server) Wait(ctx context.Context, match func(Event) bool) (Event, error) {
	n := 0
	for {
		evs, err := s.EventsSince(ctx, n)
		if err != nil {
			return Event{}, err
		}
		for _, e := range evs {
			if match(e) {
				return e, nil
			}
		}
		n += len(evs)
	}
}

// Started matches the start of request id.
func Started(id int64) func(Event) bool {
	return func(e Event) bool { return e.Kind == EventStart && e.ID == id }
}

// Ended matches the end of request id.
func Ended(id int64) func(Event) bool {
	return func(e Event) bool { return e.Kind == EventEnd && e.ID == id }
}

// Arrived matches the start that makes n requests started, for Wait: unlike Started(n),
// which waits for request n, whose start (recorded once its body is read) can come before
// that of request n-1. Each call makes a new matcher, which counts the starts it is shown.
func Arrived(n int) func(Event) bool {
	seen := 0
	return func(e Event) bool {
		if e.Kind == EventStart {
			seen++
		}
		return seen == n
	}
}

// serveEvents streams the event log from ?since=N (default 0) as newline-delimited JSON,
// until the client leaves or the server closes.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.URL.Query().Get("since"))
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flush(w)
	enc := json.NewEncoder(w)
	for {
		evs, err := s.EventsSince(r.Context(), n)
		if err != nil {
			return
		}
		for _, e := range evs {
			if enc.Encode(e) != nil {
				return
			}
		}
		n += len(evs)
		flush(w)
	}
}

func flush(w http.ResponseWriter) {
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}
