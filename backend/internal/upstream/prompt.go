package upstream

import (
	"strings"

	wire "github.com/codingplan/codingplan/shared"
)

// Prompts for chat models (openai-chat and anthropic). A completion becomes:
//
//	system: completionSystem (+ singleLineRule unless the request is multiline)
//	user:   [for each snippet]  <file path="{snippet.path}">\n{snippet.text}\n</file>\n\n
//	        <file path="{path}" language="{language}">\n{prefix}<CURSOR>{suffix}\n</file>
//
// and an edit becomes:
//
//	system: editSystem
//	user:   <file path="{path}" language="{language}">\n{prefix}<SELECTION>{selection}</SELECTION>{suffix}\n</file>\n\n
//	        [if diagnostics]  Diagnostics:\n- {diagnostic}\n...\n\n
//	        Instruction: {instruction}
//
// The models are asked for bare code; a Markdown fence they add anyway is stripped as the
// answer streams (fence.go).
const (
	completionSystem = "You are a code completion engine. The user sends a file with the marker <CURSOR> " +
		"where the cursor is. Reply with only the text to insert at <CURSOR>, exactly as it should " +
		"appear in the file: no explanation, no Markdown code fence, and no repetition of the code " +
		"before or after the cursor. Reply with nothing if nothing fits."
	singleLineRule = " Complete at most the rest of the current line."
	editSystem     = "You edit code. The user sends a file in which the selected code is between " +
		"<SELECTION> and </SELECTION>, and an instruction. If the instruction asks for a change, " +
		"reply with only the code that replaces the selection, indented as in the file: no " +
		"explanation, no Markdown code fence, no markers. If it asks a question or for an " +
		"explanation, reply briefly in plain text."
	cursorMarker = "<CURSOR>"
)

// systemPrompt writes the system prompt as a JSON string to w.
func systemPrompt(w *body, req *Request) {
	switch {
	case req.Edit != nil:
		w.str(editSystem)
	case req.Completion != nil && !req.Completion.Multiline:
		w.str(completionSystem, singleLineRule)
	default:
		w.str(completionSystem)
	}
}

// userPrompt writes the user message as a JSON string to w.
func userPrompt(w *body, req *Request) {
	w.open()
	if c := req.Completion; c != nil {
		for _, s := range c.Snippets {
			w.text(`<file path="`)
			w.text(attr(s.Path))
			w.text("\">\n")
			w.text(string(s.Text))
			w.text("\n</file>\n\n")
		}
		fileOpen(w, c.Path, c.Language)
		w.text(string(c.Prefix))
		w.text(cursorMarker)
		w.text(string(c.Suffix))
		w.text("\n</file>")
	} else if e := req.Edit; e != nil {
		fileOpen(w, e.Path, e.Language)
		w.text(string(e.Prefix))
		w.text("<SELECTION>")
		w.text(string(e.Selection))
		w.text("</SELECTION>")
		w.text(string(e.Suffix))
		w.text("\n</file>\n\n")
		if len(e.Diagnostics) > 0 {
			w.text("Diagnostics:\n")
			for _, d := range e.Diagnostics {
				w.text("- ")
				w.text(string(d))
				w.text("\n")
			}
			w.text("\n")
		}
		w.text("Instruction: ")
		w.text(string(e.Instruction))
	}
	w.close()
}

func fileOpen(w *body, path, language string) {
	w.text(`<file path="`)
	w.text(attr(path))
	w.text(`"`)
	if language != "" {
		w.text(` language="`)
		w.text(attr(language))
		w.text(`"`)
	}
	w.text(">\n")
}

// attr keeps a path or language id from breaking out of its attribute.
func attr(s string) string {
	if !strings.ContainsAny(s, "\"<>\n") {
		return s
	}
	return strings.NewReplacer(`"`, "'", "<", "(", ">", ")", "\n", " ").Replace(s)
}

// fimPrompt writes the prompt of a completions (non-chat) model as a JSON string. With a
// template, {prefix}, {suffix}, {path} and {language} are filled in and the API's suffix
// parameter is not used (it returns false); without one the prompt is the text before the
// cursor and the caller sends the text after it as suffix (it returns true).
func fimPrompt(w *body, req *Request, template string) (useSuffix bool) {
	w.open()
	defer w.close()
	if e := req.Edit; e != nil {
		// Completion models get the edit as a document to continue.
		w.text("Below is code and an instruction. The rewritten code follows.\n\n### Code\n")
		w.text(string(e.Selection))
		if len(e.Diagnostics) > 0 {
			w.text("\n\n### Problems")
			for _, d := range e.Diagnostics {
				w.text("\n- ")
				w.text(string(d))
			}
		}
		w.text("\n\n### Instruction\n")
		w.text(string(e.Instruction))
		w.text("\n\n### Rewritten code\n")
		return false
	}
	c := req.Completion
	if c == nil {
		return false
	}
	if template == "" {
		w.text(string(c.Prefix))
		return true
	}
	t := template
	for {
		i := strings.IndexByte(t, '{')
		if i < 0 {
			w.text(t)
			return false
		}
		w.text(t[:i])
		t = t[i:]
		switch {
		case strings.HasPrefix(t, "{prefix}"):
			w.text(string(c.Prefix))
			t = t[len("{prefix}"):]
		case strings.HasPrefix(t, "{suffix}"):
			w.text(string(c.Suffix))
			t = t[len("{suffix}"):]
		case strings.HasPrefix(t, "{path}"):
			w.text(c.Path)
			t = t[len("{path}"):]
		case strings.HasPrefix(t, "{language}"):
			w.text(c.Language)
			t = t[len("{language}"):]
		default:
			w.text("{")
			t = t[1:]
		}
	}
}

// stops merges the request's stop sequences with the model's, dropping duplicates and
// empty ones, and those keep rejects; at most limit (0: no limit).
func stops(req *Request, m *ModelConfig, limit int, keep func(string) bool) []string {
	var out []string
	add := func(s string) {
		if s == "" || (keep != nil && !keep(s)) || (limit > 0 && len(out) >= limit) {
			return
		}
		for _, o := range out {
			if o == s {
				return
			}
		}
		out = append(out, s)
	}
	for _, s := range req.Stop {
		add(string(s))
	}
	for _, s := range m.Stop {
		add(s)
	}
	return out
}

// maxTokens is the request's limit, else the model's.
func maxTokens(req *Request, m *ModelConfig) int {
	if req.MaxTokens > 0 {
		return req.MaxTokens
	}
	return m.MaxTokens
}

// modelID is the provider's id for the call: the request's, else the configured one.
func modelID(req *Request, m *ModelConfig) string {
	if req.Model != "" {
		return req.Model
	}
	return m.Model
}

// finishReason maps a provider's finish or stop reason to the wire's.
func finishReason(reason []byte) string {
	switch string(reason) {
	case "length", "max_tokens", "model_length":
		return wire.FinishLength
	}
	return wire.FinishStop
}

// promptSize is about how many bytes the request's content takes, to size a body buffer.
func promptSize(req *Request) int {
	n := 0
	if c := req.Completion; c != nil {
		n += len(c.Prefix) + len(c.Suffix)
		for _, s := range c.Snippets {
			n += len(s.Text) + len(s.Path) + 32
		}
	}
	if e := req.Edit; e != nil {
		n += len(e.Instruction) + len(e.Selection) + len(e.Prefix) + len(e.Suffix)
		for _, d := range e.Diagnostics {
			n += len(d) + 4
		}
	}
	return n + n/16
}
