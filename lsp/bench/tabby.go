package bench

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
)

// TabbyServer is an instant fake Tabby server: the four endpoints tabby-agent 1.5.0 calls, each
// answered at once. Completions answer with Complete(prefix, suffix). It counts the completion
// requests it served, so a run can tell the peer's cache hits (no request) from misses.
type TabbyServer struct {
	// Complete returns the completion text for a prefix and suffix; it must be safe for
	// concurrent use.
	Complete func(prefix, suffix string) string

	completions atomic.Int64
	events      atomic.Int64
}

// Completions returns how many completion requests the server has answered.
func (s *TabbyServer) Completions() int64 { return s.completions.Load() }

// tabbyCompletionRequest is the body of POST /v1/completions.
type tabbyCompletionRequest struct {
	Language string `json:"language"`
	Segments struct {
		Prefix string `json:"prefix"`
		Suffix string `json:"suffix"`
	} `json:"segments"`
}

type tabbyChoice struct {
	Index int    `json:"index"`
	Text  string `json:"text"`
}

type tabbyCompletionResponse struct {
	ID      string        `json:"id"`
	Choices []tabbyChoice `json:"choices"`
}

// Handler returns the server's HTTP handler.
func (s *TabbyServer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/health", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{
			"model":        "FakeCompletion",
			"device":       "cpu",
			"arch":         "x86_64",
			"cpu_info":     "bench",
			"cpu_count":    1,
			"cuda_devices": []string{},
			"version": map[string]string{
				"build_date":      "2025-01-01",
				"build_timestamp": "2025-01-01T00:00:00Z",
				"git_sha":         "0000000",
				"git_describe":    "v0.30.0",
			},
		})
	})
	mux.HandleFunc("GET /v1beta/server_setting", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{"disable_client_side_telemetry": true})
	})
	mux.HandleFunc("POST /v1/completions", func(w http.ResponseWriter, r *http.Request) {
		var req tabbyCompletionRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, "bad request body", http.StatusBadRequest)
			return
		}
		n := s.completions.Add(1)
		text := ""
		if s.Complete != nil {
			text = s.Complete(req.Segments.Prefix, req.Segments.Suffix)
		}
		writeJSON(w, tabbyCompletionResponse{
			ID:      "cmpl-" + strconv.FormatInt(n, 10),
			Choices: []tabbyChoice{{Index: 0, Text: text}},
		})
	})
	mux.HandleFunc("POST /v1/events", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		s.events.Add(1)
		w.WriteHeader(http.StatusOK)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encoding failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}
