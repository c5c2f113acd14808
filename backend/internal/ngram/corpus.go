package ngram

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// corpusFile is one source file the model may learn from.
type corpusFile struct {
	path  string // absolute
	rel   string // slash-separated, relative to its corpus directory
	lang  string // LSP language identifier
	size  int64
	mtime int64 // unix nanoseconds
}

// maxFileSize skips files larger than this: they are nearly always
// generated tables, not code people write.
const maxFileSize = 512 << 10

// listCorpus walks dirs for source files in a known language, in a
// deterministic order. It skips hidden directories, testdata, node_modules,
// empty files and files over maxFileSize.
func listCorpus(ctx context.Context, dirs []string) ([]corpusFile, error) {
	var files []corpusFile
	for _, dir := range dirs {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, fmt.Errorf("corpus dir %q: %w", dir, err)
		}
		err = filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if p == abs {
					return err
				}
				return nil // an unreadable subtree is skipped, not fatal
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			name := d.Name()
			if d.IsDir() {
				if p != abs && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") ||
					name == "testdata" || name == "node_modules") {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() || strings.HasPrefix(name, ".") {
				return nil
			}
			lang := fileLanguage(name)
			if lang == "" {
				return nil
			}
			info, err := d.Info()
			if err != nil || info.Size() == 0 || info.Size() > maxFileSize {
				return nil
			}
			rel, err := filepath.Rel(abs, p)
			if err != nil {
				return nil
			}
			files = append(files, corpusFile{
				path: p, rel: filepath.ToSlash(rel), lang: lang,
				size: info.Size(), mtime: info.ModTime().UnixNano(),
			})
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("corpus dir %q: %w", dir, err)
		}
	}
	return files, nil
}

// heldOut reports whether a corpus file belongs to the evaluation set that
// training never sees: a fixed hash of its relative path, so the split is
// the same on every machine.
func heldOut(rel string, percent int) bool {
	h := fnv.New64a()
	h.Write([]byte(rel))
	return int(h.Sum64()%100) < percent
}

// isGenerated reports whether src carries the standard "Code generated ...
// DO NOT EDIT." marker near its top.
func isGenerated(src []byte) bool {
	head := src[:min(len(src), 2048)]
	i := bytes.Index(head, []byte("Code generated "))
	return i >= 0 && bytes.Contains(head[i:], []byte("DO NOT EDIT"))
}

// fingerprint identifies what a trained model was built from: the format
// version, the settings that change training, and every corpus file's
// name, size and modification time. A model whose fingerprint differs is
// rebuilt.
func fingerprint(cfg Config, files []corpusFile) [32]byte {
	h := sha256.New()
	var b []byte
	putInt := func(v int64) { b = binary.LittleEndian.AppendUint64(b[:0], uint64(v)); h.Write(b) }
	putStr := func(s string) { putInt(int64(len(s))); h.Write([]byte(s)) }
	putInt(formatVersion)
	putInt(int64(cfg.Order))
	putInt(int64(cfg.MinCount))
	putInt(int64(cfg.VocabMinCount))
	putInt(int64(cfg.HoldOutPercent))
	putInt(cfg.MaxCorpusBytes)
	for _, f := range files {
		putStr(f.path)
		putInt(f.size)
		putInt(f.mtime)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// trainingFiles selects the files training reads: not held out, and within
// the byte budget (when there is one), taking files in a fixed pseudo-random
// order so a budget samples the whole tree rather than its first
// directories.
func trainingFiles(cfg Config, files []corpusFile) []corpusFile {
	var out []corpusFile
	for _, f := range files {
		if !heldOut(f.rel, cfg.HoldOutPercent) {
			out = append(out, f)
		}
	}
	if cfg.MaxCorpusBytes <= 0 {
		return out
	}
	slices.SortStableFunc(out, func(a, b corpusFile) int { return cmpU64(sampleKey(a.rel), sampleKey(b.rel)) })
	var total int64
	n := 0
	for n < len(out) && total+out[n].size <= cfg.MaxCorpusBytes {
		total += out[n].size
		n++
	}
	out = out[:n]
	slices.SortStableFunc(out, func(a, b corpusFile) int { return strings.Compare(a.path, b.path) })
	return out
}

// sampleKey orders files for a fixed pseudo-random sample.
func sampleKey(rel string) uint64 {
	h := fnv.New64a()
	h.Write([]byte("sample:" + rel))
	return h.Sum64()
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// readFileLimited reads a corpus file, refusing one that grew past the limit
// since it was listed.
func readFileLimited(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) > maxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxFileSize)
	}
	return b, nil
}
