package server

import (
	"bytes"
	"encoding/json"

	"github.com/codingplan/codingplan/lsp/internal/config"
)

// Protocol tracing (the trace setting). "messages" logs every message with its string values
// redacted, except the names below that carry no content; "content" logs messages whole, and
// is meant for debugging on one's own machine. Both log at info level to the server's log
// (window/logMessage, or --log-file), which editors show as the server's output.

// traceKeep are the JSON keys whose string values tracing at "messages" keeps.
var traceKeep = map[string]bool{
	"jsonrpc": true, "id": true, "method": true, "uri": true, "languageId": true, "kind": true, "command": true,
	"positionEncoding": true, "positionEncodings": true, "state": true, "section": true, "scopeUri": true,
	"triggerCharacter": true, "name": true, "version": true, "title": true,
}

func (s *Server) traceMode() string {
	mode, _ := s.trace.Load().(string)
	return mode
}

// logMessageMethod marks the notifications that carry the log itself: tracing them would log
// each log line again, without end.
var logMessageMethod = []byte(`"method":"window/logMessage"`)

// traceMessage is the stream's trace hook.
func (s *Server) traceMessage(dir string, body []byte) {
	mode := s.traceMode()
	if mode != config.TraceOff && dir == "send" && bytes.Contains(body, logMessageMethod) {
		return
	}
	switch mode {
	case config.TraceMessages:
		s.log.Info("lsp "+dir, "bytes", len(body), "message", redactJSON(body))
	case config.TraceContent:
		s.log.Info("lsp "+dir, "bytes", len(body), "message", string(body))
	}
}

// redactJSON returns body with every string value replaced by "[redacted]" except under the
// keys in traceKeep; numbers, booleans, nulls and the shape stay, so ids, positions and
// versions can be followed. Object keys are not content and stay too.
func redactJSON(body []byte) string {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "[not JSON]"
	}
	out, err := json.Marshal(redact(v, false))
	if err != nil {
		return "[unprintable]"
	}
	return string(out)
}

func redact(v any, keep bool) any {
	switch x := v.(type) {
	case string:
		if keep {
			return x
		}
		return "[redacted]"
	case map[string]any:
		for k, e := range x {
			x[k] = redact(e, traceKeep[k])
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = redact(e, keep)
		}
		return x
	}
	return v
}
