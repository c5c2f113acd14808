package config

import (
	"errors"
	"net"
	"net/url"
	"strings"
)

// ErrInsecureBackend is wrapped by Load's error when backendUrl is ws:// to a host other than
// loopback and allowInsecureBackend is off: the connection would carry the token and code in
// clear text.
var ErrInsecureBackend = errors.New("backendUrl is ws:// (unencrypted) to a host that is not this machine: use wss://, or set allowInsecureBackend to accept it")

// Insecure reports whether u is a ws:// URL to a host other than loopback (localhost,
// 127.0.0.0/8, ::1): plain text over a network.
func Insecure(u string) bool {
	p, err := url.Parse(u)
	if err != nil || !strings.EqualFold(p.Scheme, "ws") {
		return false
	}
	return !Loopback(p.Hostname())
}

// Loopback reports whether host names this machine: "localhost" (or a name under it) or a
// loopback IP address. Other names are not resolved: a name that resolves to loopback today
// may not tomorrow.
func Loopback(host string) bool {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
