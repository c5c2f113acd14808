package bench

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestTabbyServer checks the fake against the shapes tabby-agent 1.5.0 reads.
func TestTabbyServer(t *testing.T) {
	fake := &TabbyServer{Complete: func(prefix, suffix string) string { return prefix + "|" + suffix }}
	srv := httptest.NewServer(fake.Handler())
	defer srv.Close()

	tests := []struct {
		method, path, body string
		wantStatus         int
		check              func(t *testing.T, body map[string]any)
	}{
		{"GET", "/v1/health", "", 200, func(t *testing.T, b map[string]any) {
			v, _ := b["version"].(map[string]any)
			if b["model"] == nil || b["device"] == nil || v["git_describe"] == nil {
				t.Errorf("health %v lacks model, device or version.git_describe", b)
			}
		}},
		{"GET", "/v1beta/server_setting", "", 200, func(t *testing.T, b map[string]any) {
			if b["disable_client_side_telemetry"] != true {
				t.Errorf("server_setting %v", b)
			}
		}},
		{"POST", "/v1/completions", `{"language":"go","segments":{"prefix":"a","suffix":"b"}}`, 200, func(t *testing.T, b map[string]any) {
			choices, _ := b["choices"].([]any)
			if b["id"] == nil || len(choices) != 1 {
				t.Fatalf("completion %v", b)
			}
			c := choices[0].(map[string]any)
			if c["index"] != float64(0) || c["text"] != "a|b" {
				t.Errorf("choice %v, want index 0, text a|b", c)
			}
		}},
		{"POST", "/v1/completions", `{`, 400, nil},
		{"POST", "/v1/events", `{"type":"view"}`, 200, nil},
		{"GET", "/v1/completions", "", 405, nil},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if tt.check != nil {
				var b map[string]any
				if err := json.NewDecoder(resp.Body).Decode(&b); err != nil {
					t.Fatal(err)
				}
				tt.check(t, b)
			}
		})
	}
	if got := fake.Completions(); got != 1 {
		t.Errorf("completions counted %d, want 1", got)
	}
}

func TestTabbyConfig(t *testing.T) {
	got := TabbyConfig("http://127.0.0.1:1")
	for _, want := range []string{`endpoint = "http://127.0.0.1:1"`, "[anonymousUsageTracking]\ndisable = true",
		"[completion.debounce]\nmode = \"fixed\"\ninterval = 0"} {
		if !strings.Contains(got, want) {
			t.Errorf("config lacks %q:\n%s", want, got)
		}
	}
}
