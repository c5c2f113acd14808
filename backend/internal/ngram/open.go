package ngram

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Open returns the model for cfg: the one saved in cfg.StateDir when it was
// built from the same corpus and settings by this format version, else a
// new one trained on the corpus and saved there. Training reads only the
// corpus directories, never request content.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Model, error) {
	cfg = cfg.withDefaults()
	if cfg.StateDir == "" {
		return nil, errors.New("ngram: no state dir")
	}
	dirs, goOnly, err := corpusDirs(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	files, err := listCorpus(ctx, dirs)
	if err != nil {
		return nil, fmt.Errorf("ngram: %w", err)
	}
	files = goFilesOnly(files, goOnly)
	if len(files) == 0 {
		return nil, fmt.Errorf("%w: no source files in %s", ErrNoCorpus, strings.Join(dirs, ", "))
	}
	fp := fingerprint(cfg, files)
	path := filepath.Join(cfg.StateDir, fileName)

	start := time.Now()
	m, err := load(path, fp)
	switch {
	case err == nil:
		m.minProb = float32(cfg.MinTokenProb)
		log.Info("ngram: model loaded", "path", path, "bytes", m.info.FileBytes,
			"elapsed", time.Since(start).Round(time.Millisecond))
		return m, nil
	case errors.Is(err, fs.ErrNotExist):
		log.Info("ngram: no model yet, training", "path", path)
	default:
		log.Info("ngram: retraining", "path", path, "reason", err.Error())
	}

	if err := os.MkdirAll(cfg.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("ngram: state dir: %w", err)
	}
	tf := trainingFiles(cfg, files)
	log.Info("ngram: training", "dirs", strings.Join(dirs, ", "), "files", len(tf),
		"held_out", len(files)-len(tf), "order", cfg.Order)
	m, st, err := train(ctx, cfg, tf, log)
	if err != nil {
		return nil, fmt.Errorf("ngram: train: %w", err)
	}
	m.info.Fingerprint = fp
	m.minProb = float32(cfg.MinTokenProb)
	m.derive()
	if err := m.save(path); err != nil {
		// Serve anyway; the next start trains again.
		log.Warn("ngram: cannot save the model", "err", err.Error())
	}
	log.Info("ngram: model trained", "files", st.Files, "skipped", st.Skipped, "bytes", st.Bytes,
		"tokens", st.Tokens, "vocab", m.vocabSize(), "file_bytes", m.info.FileBytes,
		"elapsed", st.Duration.Round(time.Millisecond))
	return m, nil
}

// corpusDirs returns the directories to learn from: the Go toolchain's
// source tree unless cfg.NoGoroot, then cfg.CorpusDirs. goOnly is the
// toolchain's source tree, of which only Go files are learnt from: its
// scripts in other languages (a gdb helper in Python, some JavaScript and
// shell) are not what a user writes in those languages, and suggesting
// them is worse than silence.
func corpusDirs(ctx context.Context, cfg Config, log *slog.Logger) (dirs []string, goOnly string, err error) {
	if !cfg.NoGoroot {
		root := cfg.goroot
		if root == "" {
			root = goroot(ctx)
		}
		if root != "" {
			goOnly = filepath.Join(root, "src")
			dirs = append(dirs, goOnly)
		} else {
			log.Warn("ngram: Go toolchain not found; training on the corpus dirs only")
		}
	}
	dirs = append(dirs, cfg.CorpusDirs...)
	if len(dirs) == 0 {
		return nil, "", fmt.Errorf("%w: no Go toolchain found and no corpus dirs configured", ErrNoCorpus)
	}
	return dirs, goOnly, nil
}

// goFilesOnly drops the files under dir that are not Go.
func goFilesOnly(files []corpusFile, dir string) []corpusFile {
	if dir == "" {
		return files
	}
	dir, _ = filepath.Abs(dir)
	return slices.DeleteFunc(files, func(f corpusFile) bool {
		return f.lang != "go" && strings.HasPrefix(f.path, dir+string(filepath.Separator))
	})
}

// goroot finds the Go toolchain's root: `go env GOROOT`, else the GOROOT
// environment variable.
func goroot(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "env", "GOROOT").Output(); err == nil {
		if root := string(bytes.TrimSpace(out)); isDir(filepath.Join(root, "src")) {
			return root
		}
	}
	if root := os.Getenv("GOROOT"); root != "" && isDir(filepath.Join(root, "src")) {
		return root
	}
	return ""
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
