package server

import (
	"context"
	"encoding/json"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.lsp.dev/protocol"

	"github.com/codingplan/codingplan/lsp/internal/complete"
)

// labelPrefix marks the suggestion in a completion popup.
const labelPrefix = "✦ codingplan: "

// maxLabelChars bounds the label's excerpt of the suggestion.
const maxLabelChars = 60

// prepareCompletion handles textDocument/completion, for clients without inline completion:
// the suggestion comes as one item, labelled as ours, in an incomplete list so that typing
// asks again. Clients that do inline completion get an empty list here, so the same
// suggestion does not show twice.
func (s *Server) prepareCompletion(_ context.Context, raw json.RawMessage) (runFunc, error) {
	const method = "textDocument/completion"
	var p protocol.CompletionParams
	if err := decodeParams(method, raw, &p); err != nil {
		return nil, err
	}
	if s.clientHasInline() {
		return func(context.Context) (any, error) {
			return protocol.CompletionList{Items: []protocol.CompletionItem{}}, nil
		}, nil
	}
	in, doc, enc, err := s.completionInput(method, string(p.TextDocument.URI), p.Position, complete.Automatic)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (any, error) {
		list := protocol.CompletionList{IsIncomplete: true, Items: []protocol.CompletionItem{}}
		res := s.complete(ctx, in)
		lineEnd := doc.LineEnd(in.Offset)
		for _, it := range res.Items {
			// The edit starts at the start of the word being typed, so the client's filter
			// (the typed word against filterText) keeps the item while the user types on.
			start := wordStart(in.Text, in.Offset)
			prefix := ""
			if it.Start >= start && it.Start <= in.Offset {
				prefix = in.Text[start:it.Start]
			} else {
				start = min(it.Start, in.Offset)
			}
			// A completion edit must stay on the cursor's line.
			end := min(max(it.End, in.Offset), lineEnd)
			newText := prefix + it.InsertText
			r := doc.RangeOf(enc, start, end)
			list.Items = append(list.Items, protocol.CompletionItem{
				Label:            label(newText),
				Kind:             protocol.CompletionItemKindText,
				Detail:           protocol.NewOptional("codingplan"),
				Documentation:    &protocol.MarkupContent{Kind: protocol.MarkupKindMarkdown, Value: "```" + in.Language + "\n" + newText + "\n```"},
				FilterText:       protocol.NewOptional(newText),
				SortText:         protocol.NewOptional("0"),
				Preselect:        protocol.NewOptional(true),
				InsertTextFormat: protocol.InsertTextFormatPlainText,
				TextEdit:         &protocol.TextEdit{Range: r, NewText: newText},
				Command:          acceptCommand(in.DocKey, it.ID),
			})
		}
		return list, nil
	}, nil
}

// label is the popup label: the mark and the suggestion's first non-blank line, shortened.
func label(text string) string {
	line := ""
	for l := range strings.SplitSeq(text, "\n") {
		if line = strings.TrimSpace(l); line != "" {
			break
		}
	}
	if utf8.RuneCountInString(line) > maxLabelChars {
		r := []rune(line)
		line = string(r[:maxLabelChars]) + "…"
	}
	return labelPrefix + line
}

// wordStart returns the byte offset where the identifier that ends at off starts.
func wordStart(text string, off int) int {
	for off > 0 {
		r, size := utf8.DecodeLastRuneInString(text[:off])
		if r != '_' && r != '$' && !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			break
		}
		off -= size
	}
	return off
}
