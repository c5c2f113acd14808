// Command codingplan-fakeprovider runs the test model provider (package providertest) as a
// process, for end-to-end tests driven from other languages and processes: editors, the
// backend binary, benchmark scripts. It speaks the OpenAI chat completions, OpenAI
// completions and Anthropic Messages streaming APIs; the model name selects special
// behaviours (echo, slow, hang, cut, error-429, ...: see providertest.Behaviour), other
// models get the reply set by the flags. An OpenAI request with "n" above 1 gets that many
// choices: --reply, then each --alt-reply in turn (then --reply marked with its index).
//
//	codingplan-fakeprovider --listen 127.0.0.1:0 --reply "hello world" --delay-per-chunk 10ms
//	codingplan-fakeprovider --reply 'intln("hi")' --alt-reply 'intf("hi")' --alt-reply 'int("hi")'
//	codingplan-fakeprovider --reply "$(printf 'a()\n\tb()')" --chunks 20 --stream-over 500ms
//
// The first line on stdout is the server's URL (use URL+"/v1" as an OpenAI base URL, URL as
// an Anthropic one). GET /_events streams request start and end events as newline-delimited
// JSON ({"kind":"end","id":1,"api":"openai-chat","model":"m","reason":"client-gone"}).
// SIGINT or SIGTERM stops it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/codingplan/codingplan/backend/internal/upstream/providertest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "codingplan-fakeprovider:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	reply := flag.String("reply", "", "text streamed to models with no special behaviour, word by word (default: a short line of code)")
	chunkBytes := flag.Int("chunk-bytes", 0, "split --reply into chunks of this many bytes instead of words")
	chunks := flag.Int("chunks", 0, "split --reply into this many chunks of about the same size (tokens) instead of words")
	delay := flag.Duration("delay-per-chunk", 0, "wait before each chunk")
	over := flag.Duration("stream-over", 0, "space the chunks evenly over this time: one every time/chunks, the last at the end (instead of --delay-per-chunk)")
	noUsage := flag.Bool("no-usage", false, "send no usage data")
	var alts []string
	flag.Func("alt-reply", "the text of the next choice for OpenAI requests with \"n\" above 1 (repeatable)", func(s string) error {
		alts = append(alts, s)
		return nil
	})
	flag.Parse()

	srv, err := providertest.Listen(*listen)
	if err != nil {
		return err
	}
	defer srv.Close()
	def := providertest.Reply{Chunks: providertest.DefaultChunks, Delay: *delay, NoUsage: *noUsage}
	switch {
	case *chunkBytes > 0 && *chunks > 0:
		return fmt.Errorf("--chunk-bytes and --chunks both given")
	case *reply != "" && *chunks > 0:
		def.Chunks = providertest.SplitEven(*reply, *chunks)
	case *reply != "" && *chunkBytes > 0:
		def.Chunks = providertest.Split(*reply, *chunkBytes)
	case *reply != "":
		def.Chunks = providertest.SplitWords(*reply)
	}
	for _, a := range alts {
		if *chunkBytes > 0 {
			def.Alternatives = append(def.Alternatives, providertest.Split(a, *chunkBytes))
		} else {
			def.Alternatives = append(def.Alternatives, providertest.SplitWords(a))
		}
	}
	if *over > 0 {
		if *delay > 0 {
			return fmt.Errorf("--stream-over and --delay-per-chunk both given")
		}
		// The provider waits Delay before each chunk: chunk i goes at (i+1)*Delay.
		def.Delay = *over / time.Duration(max(1, len(def.Chunks)))
	}
	srv.SetDefault(def)
	// SIGTERM is handled before the URL is out: whoever reads it may stop the process at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Println(srv.URL)
	<-ctx.Done()
	return nil
}
