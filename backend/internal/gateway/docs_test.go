package gateway

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	wire "github.com/codingplan/codingplan/shared"
)

// TestProtocolDoc keeps docs/protocol.md in step with the wire package: every golden frame is
// quoted verbatim, every JSON frame in the document decodes, and every error code is explained.
func TestProtocolDoc(t *testing.T) {
	data, err := os.ReadFile("../../../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)

	for _, dir := range []string{"client", "server"} {
		paths, _ := filepath.Glob(filepath.Join("../../../shared/testdata", dir, "*.json"))
		if len(paths) == 0 {
			t.Fatalf("no goldens in %s", dir)
		}
		for _, p := range paths {
			golden, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(doc, string(bytes.TrimSuffix(golden, []byte("\n")))) {
				t.Errorf("docs/protocol.md does not quote the golden frame %s/%s", dir, filepath.Base(p))
			}
		}
	}

	// JSON frames: lines of ```json blocks, and "> "/"< " lines of the example session.
	frames := 0
	for _, m := range regexp.MustCompile("(?s)```json\n(.*?)```").FindAllStringSubmatch(doc, -1) {
		for _, line := range strings.Split(strings.TrimSpace(m[1]), "\n") {
			checkFrame(t, line)
			frames++
		}
	}
	for _, m := range regexp.MustCompile(`(?m)^([<>]) (\{.*\})`).FindAllStringSubmatch(doc, -1) {
		line := m[2]
		if i := strings.Index(line, "}   "); i >= 0 { // a trailing comment
			line = line[:i+1]
		}
		checkFrame(t, strings.TrimSpace(line))
		frames++
	}
	if frames < 25 {
		t.Errorf("found only %d frames in the document", frames)
	}

	for _, code := range []wire.Code{wire.CodeUnauthorized, wire.CodeTokenExpired, wire.CodeRateLimited,
		wire.CodeQuotaExceeded, wire.CodeBadRequest, wire.CodeTooLarge, wire.CodeUpstreamUnavailable,
		wire.CodeUpstreamError, wire.CodeCanceled, wire.CodeInternal} {
		if !strings.Contains(doc, "| `"+string(code)+"` |") {
			t.Errorf("the error table lacks %s", code)
		}
	}
}

// checkFrame decodes a frame of either direction.
func checkFrame(t *testing.T, line string) {
	t.Helper()
	if strings.Contains(line, `"type":"request"`) || strings.Contains(line, `"type":"cancel"`) ||
		strings.Contains(line, `"type":"auth"`) || strings.Contains(line, `"type":"ping"`) {
		if _, err := wire.DecodeClient([]byte(line)); err != nil {
			t.Errorf("client frame in docs does not decode: %v\n%s", err, line)
		}
		return
	}
	f, err := wire.DecodeServer([]byte(line))
	if err != nil {
		t.Errorf("server frame in docs does not decode: %v\n%s", err, line)
		return
	}
	if f.Type == wire.TypeError && !f.Code.Known() {
		t.Errorf("unknown code in docs: %s", line)
	}
}
