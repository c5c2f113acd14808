package bench

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// MemoryDocs returns n distinct synthetic Go documents of about total/n bytes each, under rootURI.
func MemoryDocs(rootURI string, n, total int) []*Doc {
	per := total / n
	docs := make([]*Doc, n)
	for i := range docs {
		var b strings.Builder
		b.Grow(per + 256)
		fmt.Fprintf(&b, "package mem%d\n\nimport \"fmt\"\n\n", i)
		for f := 0; b.Len() < per; f++ {
			fmt.Fprintf(&b, "// f%d_%d prints a step of document %d.\nfunc f%d_%d(n int) int {\n\tif n > %d {\n\t\tfmt.Println(\"step\", n, %d)\n\t}\n\treturn n*%d + %d\n}\n\n",
				i, f, i, i, f, f, i, f+1, i)
		}
		text := b.String()[:per]
		lines := strings.Split(text, "\n")
		docs[i] = &Doc{
			URI:     fmt.Sprintf("%s/mem/doc%03d.go", rootURI, i),
			lines:   lines,
			cursor:  len(lines) - 1,
			version: 1,
		}
	}
	return docs
}

// MemoryResult is a server's resident memory idle after initialize and after opening documents.
type MemoryResult struct {
	Name       string
	Docs       int
	DocBytes   int
	Idle       Memory
	Loaded     Memory
	LoadedTime time.Duration // from the first didOpen to the answer of the request after the last
}

// MeasureMemory reads s's memory (the process and its descendants) idle, then opens docs, asks
// for a completion at the end of the last one (so every didOpen before it has been read), and
// reads the memory again.
func MeasureMemory(ctx context.Context, s *Server, method string, docs []*Doc) (MemoryResult, error) {
	r := MemoryResult{Name: s.Name, Docs: len(docs)}
	var err error
	if r.Idle, err = GroupMemory(s.Proc.PID()); err != nil {
		return r, err
	}
	start := time.Now()
	for _, d := range docs {
		r.DocBytes += len(d.Text())
		if err := d.Open(s.Client); err != nil {
			return r, err
		}
	}
	last := docs[len(docs)-1]
	if _, err := s.Client.Call(ctx, method, RequestParams(method, last.URI, last.Cursor())); err != nil {
		return r, fmt.Errorf("%s: %s after opening the documents: %w", s.Name, method, err)
	}
	r.LoadedTime = time.Since(start)
	if r.Loaded, err = GroupMemory(s.Proc.PID()); err != nil {
		return r, err
	}
	return r, nil
}
