// Command codingplan-lsp is codingplan's language server. It speaks LSP on stdin and stdout
// (stdout carries nothing else) and keeps one websocket to the backend. Logs go to the editor
// (window/logMessage, at their level) or --log-file, and never hold code, prompts or model output unless the trace setting says
// "content".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/codingplan/codingplan/lsp/internal/complete"
	"github.com/codingplan/codingplan/lsp/internal/config"
	"github.com/codingplan/codingplan/lsp/internal/erase"
	"github.com/codingplan/codingplan/lsp/internal/lsplog"
	"github.com/codingplan/codingplan/lsp/internal/remote"
	"github.com/codingplan/codingplan/lsp/internal/server"
	"github.com/codingplan/codingplan/lsp/internal/signin"
)

// version is set at build time with -ldflags "-X main.version=..."; else the module version.
var version = ""

func main() {
	code := 0
	erase.Do(func() { code = run(os.Args[1:], os.Stderr) })
	os.Exit(code)
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("codingplan-lsp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Bool("stdio", true, "speak LSP on stdin and stdout (the default, and the only transport)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	logFile := fs.String("log-file", "", "append logs to this file instead of stderr")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "codingplan-lsp: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *showVersion {
		fmt.Println("codingplan-lsp", versionString())
		return 0
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "codingplan-lsp: --log-level: %v\n", err)
		return 2
	}
	// Logs go to --log-file, else to the editor's log at their level (window/logMessage; stderr,
	// which editors file as errors, only while no editor is attached).
	var logs *lsplog.Handler
	var handler slog.Handler
	if *logFile != "" {
		f, err := os.OpenFile(*logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			fmt.Fprintf(stderr, "codingplan-lsp: %v\n", err)
			return 1
		}
		defer f.Close()
		handler = slog.NewTextHandler(f, &slog.HandlerOptions{Level: level})
	} else {
		// On stderr only warnings and errors: editors show every stderr line as an error.
		logs = lsplog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: max(level, slog.LevelWarn)}), level)
		handler = logs
	}
	log := slog.New(handler)

	// Nothing of the user's code may reach the disk, not even in a core dump.
	if err := disableCoreDumps(); err != nil {
		log.Warn("core dumps could not be disabled", "err", err)
	}
	if erase.Mode == "none" {
		log.Warn("freed memory is not erased: built without GOEXPERIMENT=runtimesecret, so a closed document's text may stay in memory the runtime has not reused yet")
	}
	// The live heap is mostly open documents (one copy of each text; line indexes only for the
	// documents asked about) and the process idles between keystrokes: trade a little GC time
	// for memory (100 documents of 10 MB in all: 27-28 MB RSS at Go's default, 26 MB here). No
	// memory limit is set: a larger workspace must not make the collector thrash. GOGC in the
	// environment still decides when set.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	// The server's work is hand-offs between goroutines (stdin reader, request, websocket
	// reader), each a few microseconds of CPU. With a second P idle, every hand-off also wakes
	// an OS thread to look for work that the current thread then runs itself: on a loaded
	// 2-CPU machine that cost 0.2 ms per completion and a third more CPU (scripts/bench-lsp.sh,
	// GOMAXPROCS=1 against the default, three runs each). GOMAXPROCS in the environment still
	// decides when set.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	env := config.FromEnv(os.Getenv)
	initial := env.Apply(config.Default())
	backend := remote.New(remote.Config{
		URL:     initial.BackendURL,
		Token:   initial.Token,
		Version: versionString(),
	}, log.With("part", "remote"))
	engine := complete.New(complete.Config{}, backend, log.With("part", "complete"))
	var signInFile signin.File
	if path, err := signin.DefaultPath(); err == nil {
		signInFile.Path = path
	} else {
		log.Warn("a sign-in will last until the editor closes", "err", err)
	}
	cfg := server.Config{
		Name: "codingplan-lsp", Version: versionString(), Backend: backend, Engine: engine, Env: env,
		SignInFile: signInFile,
	}
	if logs != nil {
		cfg.Logs = logs
	}
	s := server.New(cfg, log)

	in, restore := stdio()
	defer restore()
	err := s.Run(ctx, in)
	engine.Close() // the streams of suggestions answered before their end
	st := engine.Stats()
	log.Info("exit", "requests", st.Requests, "sent", st.Sent, "cacheHits", st.CacheHits, "typedAhead", st.TypedAhead,
		"shown", st.Shown, "accepted", st.Accepted, "partiallyAccepted", st.PartiallyAccepted, "err", err)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, server.ErrFraming):
		// The editor got a window/logMessage; stderr is the other log it shows.
		fmt.Fprintf(stderr, "codingplan-lsp: stopping: %v on stdin\n", err)
		return exitFraming
	default:
		return 1 // LSP: exit without shutdown, or the editor went away
	}
}

// exitFraming is the exit status after broken message framing on stdin (docs/configuration.md).
const exitFraming = 3

// stdio returns stdin and stdout as one stream. Stdin is switched to non-blocking mode so the
// runtime poller owns it: closing it then ends a pending read, and the server's reader
// goroutine ends with the session instead of outliving it. restore puts blocking mode back
// (through a duplicate, as stdin is closed by then): the mode belongs to the open file, which
// whoever started the server shares.
func stdio() (rwc io.ReadWriteCloser, restore func()) {
	in := os.Stdin
	restore = func() {}
	if dup, err := syscall.Dup(0); err == nil {
		if err := syscall.SetNonblock(0, true); err == nil {
			in = os.NewFile(0, "/dev/stdin")
		}
		restore = func() {
			_ = syscall.SetNonblock(dup, false)
			_ = syscall.Close(dup)
		}
	}
	return struct {
		io.Reader
		io.Writer
		io.Closer
	}{in, os.Stdout, in}, restore
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
