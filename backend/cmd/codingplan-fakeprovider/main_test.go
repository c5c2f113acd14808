package main

import (
	"bufio"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/codingplan/codingplan/backend/internal/upstream/providertest"
)

// TestMain runs the command itself when the test binary is started as a child process.
func TestMain(m *testing.M) {
	if os.Getenv("CODINGPLAN_FAKEPROVIDER_CHILD") == "1" {
		os.Args = append([]string{"codingplan-fakeprovider"}, strings.Fields(os.Getenv("CODINGPLAN_FAKEPROVIDER_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestProcess starts the command as a process, streams a reply through its URL, reads the
// events endpoint, and stops it with SIGTERM.
func TestProcess(t *testing.T) {
	url, cmd, exited := startChild(t, "--listen 127.0.0.1:0 --reply hello_fake_world --chunk-bytes 5 --alt-reply alt_one --alt-reply alt_two")
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
	}()

	events, err := http.Get(url + "/_events")
	if err != nil {
		t.Fatal(err)
	}
	defer events.Body.Close()

	texts, body := complete(t, url, `{"model":"m","stream":true,"prompt":"p"}`)
	if len(texts) != 1 || texts[0] != "hello_fake_world" || !strings.HasSuffix(body, "data: [DONE]\n\n") {
		t.Errorf("reply texts %v, body %q", texts, body)
	}

	dec := json.NewDecoder(events.Body)
	var got []providertest.Event
	for len(got) < 2 {
		var e providertest.Event
		if err := dec.Decode(&e); err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}
	if got[0].Kind != providertest.EventStart || got[1].Kind != providertest.EventEnd || got[1].Reason != providertest.ReasonDone || got[1].Chunks != 4 {
		t.Errorf("events %+v", got)
	}

	// "n": 3: the reply, then each --alt-reply, as the choices 0, 1 and 2.
	texts, _ = complete(t, url, `{"model":"m","stream":true,"prompt":"p","n":3}`)
	if want := map[int]string{0: "hello_fake_world", 1: "alt_one", 2: "alt_two"}; !maps.Equal(texts, want) {
		t.Errorf("choices %v, want %v", texts, want)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("exit: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
}

// TestStreamOver checks --chunks and --stream-over: the reply in that many chunks, the last
// no sooner than the time given.
func TestStreamOver(t *testing.T) {
	url, cmd, exited := startChild(t, "--listen 127.0.0.1:0 --reply abcdefgh --chunks 4 --stream-over 200ms")
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
	}()
	start := time.Now()
	texts, body := complete(t, url, `{"model":"m","stream":true,"prompt":"p"}`)
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Errorf("the reply took %v, want at least 200ms", took)
	}
	if n := strings.Count(body, `"finish_reason":null`); texts[0] != "abcdefgh" || n != 4 {
		t.Errorf("reply %q in %d chunks, want abcdefgh in 4: %s", texts[0], n, body)
	}
}

// startChild runs the command with args and returns its URL, the process, and its exit.
func startChild(t *testing.T, args string) (string, *exec.Cmd, chan error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "CODINGPLAN_FAKEPROVIDER_CHILD=1", "CODINGPLAN_FAKEPROVIDER_ARGS="+args)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		<-exited
		t.Fatal(err)
	}
	url := strings.TrimSpace(line)
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		_ = cmd.Process.Kill()
		<-exited
		t.Fatalf("first line %q is not a URL", line)
	}
	return url, cmd, exited
}

// complete posts body to url's /v1/completions and returns each choice's text by index, and the
// raw stream.
func complete(t *testing.T, url, body string) (map[int]string, string) {
	t.Helper()
	resp, err := http.Post(url+"/v1/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	texts := map[int]string{}
	for l := range strings.Lines(string(raw)) {
		var chunk struct {
			Choices []struct {
				Text  string
				Index int
			} `json:"choices"`
		}
		data, ok := strings.CutPrefix(strings.TrimSpace(l), "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		if err := json.Unmarshal([]byte(data), &chunk); err != nil {
			t.Fatalf("chunk %q: %v", data, err)
		}
		for _, c := range chunk.Choices {
			texts[c.Index] += c.Text
		}
	}
	return texts, string(raw)
}
