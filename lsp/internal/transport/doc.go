// Package transport is the language server's JSON-RPC transport: LSP's base protocol
// (Content-Length framing) on stdio, as a go.lsp.dev/jsonrpc2 Stream, and the payload codec
// that encodes go.lsp.dev/protocol's types.
//
// go.lsp.dev/jsonrpc2 does the rest: decoding and encoding messages, dispatch of concurrent
// requests with their own contexts, cancellation by id and shutdown. This Stream replaces the
// library's header stream for four things a local server fed by an editor needs and that one
// does not do:
//   - bounds: a header line over 4 KiB or a body over 64 MiB does not allocate; an oversized body
//     is skipped and answered with an error, and the framing stays intact;
//   - survival: a message that is not JSON-RPC is answered (ParseError or InvalidRequest, with
//     its id when one can be read) and the next one is read; the library ends the connection;
//   - memory: no buffer is reused across messages (a reused read buffer keeps the tail of the
//     largest document received, a reused write buffer the last suggestion sent); each body is
//     its own allocation, which runtime/secret erases once freed (see package erase), and the
//     read-ahead buffer is cleared before every read;
//   - a trace hook that sees each message as it crosses.
//
// Broken framing (a header line that is not "Name: value", a bad, missing or repeated
// Content-Length, input ending inside a message) ends the stream with an error wrapping
// ErrFraming: nothing after it can be trusted.
package transport
