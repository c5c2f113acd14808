package wire

import (
	"errors"
	"fmt"
)

// Code is an error code. The set is closed: a server sends only these, and a client that meets
// another treats it as internal.
type Code string

// The error codes.
const (
	CodeUnauthorized        Code = "unauthorized"         // no token, a bad signature, wrong issuer or audience
	CodeTokenExpired        Code = "token_expired"        // the token's exp has passed; send auth or reconnect
	CodeRateLimited         Code = "rate_limited"         // the plan's concurrency is in use; retry_after_ms says when to retry
	CodeQuotaExceeded       Code = "quota_exceeded"       // the plan does not allow this (model, volume)
	CodeBadRequest          Code = "bad_request"          // a frame that does not follow this protocol
	CodeTooLarge            Code = "too_large"            // a frame or field over its limit
	CodeUpstreamUnavailable Code = "upstream_unavailable" // the model provider could not be reached or timed out
	CodeUpstreamError       Code = "upstream_error"       // the model provider failed or broke off its answer
	CodeCanceled            Code = "canceled"             // the client cancelled the stream
	CodeInternal            Code = "internal"             // a fault of the server's
)

var codes = map[Code]bool{
	CodeUnauthorized: true, CodeTokenExpired: true, CodeRateLimited: true, CodeQuotaExceeded: true,
	CodeBadRequest: true, CodeTooLarge: true, CodeUpstreamUnavailable: true, CodeUpstreamError: true,
	CodeCanceled: true, CodeInternal: true,
}

// Known reports whether c is one of the codes above.
func (c Code) Known() bool { return codes[c] }

// Retryable reports whether the same request may succeed if sent again later.
func (c Code) Retryable() bool {
	switch c {
	case CodeRateLimited, CodeUpstreamUnavailable, CodeUpstreamError, CodeInternal:
		return true
	}
	return false
}

// Error is a protocol error: what a server puts in an error frame, and what a client's calls
// return when they get one. Message never holds user content.
type Error struct {
	Code         Code
	Message      string
	RetryAfterMS int64
	Plan         *Plan
}

func (e *Error) Error() string {
	if e.Message == "" {
		return string(e.Code)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Errorf builds an *Error.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of the first *Error in err's chain, or internal.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) && e.Code.Known() {
		return e.Code
	}
	return CodeInternal
}

// ErrorFrame is the frame that reports err, ending stream id when id is not empty.
func ErrorFrame(id string, err error) ServerFrame {
	f := ServerFrame{Type: TypeError, ID: id, Code: CodeInternal, Message: "internal error"}
	var e *Error
	if errors.As(err, &e) {
		f.Code, f.Message, f.RetryAfterMS, f.Plan = e.Code, e.Message, e.RetryAfterMS, e.Plan
		if !f.Code.Known() {
			f.Code = CodeInternal
		}
	}
	return f
}

// AsError returns the *Error an error frame carries.
func (f *ServerFrame) AsError() *Error {
	code := f.Code
	if !code.Known() {
		code = CodeInternal
	}
	return &Error{Code: code, Message: f.Message, RetryAfterMS: f.RetryAfterMS, Plan: f.Plan}
}
