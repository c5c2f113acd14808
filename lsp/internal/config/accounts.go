package config

import (
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	wire "github.com/codingplan/codingplan/shared"
)

// Where make run serves the backend and the account service (scripts/run.sh).
const (
	localBackendPort  = "8787"
	localAccountsPort = "8788"
)

// ServiceURL is the account service's URL: accountsUrl (or CODINGPLAN_ACCOUNTS_URL) when set,
// else derived from the backend's URL: for make run's backend on a loopback address at port
// 8787, the account service beside it at port 8788 (http://127.0.0.1:8788); for any other
// backend, its origin with http(s) for ws(s) (https://codingplan.example.com), where a
// deployment serves /v1/token, /v1/device/code and /v1/revoke in front of the account service.
func (s Settings) ServiceURL() string {
	if s.AccountsURL != "" {
		return s.AccountsURL
	}
	u, err := url.Parse(s.BackendURL)
	if err != nil || u.Host == "" {
		u, _ = url.Parse(Default().BackendURL)
	}
	scheme := "https"
	if u.Scheme == "ws" || u.Scheme == "http" {
		scheme = "http"
	}
	host := u.Host
	if h, port, err := net.SplitHostPort(u.Host); err == nil && port == localBackendPort && loopback(h) {
		host = net.JoinHostPort(h, localAccountsPort)
	}
	return scheme + "://" + host
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// APIKey returns the API key for headless use: the first line of apiKeyFile when it is set
// (a leading ~/ is the home directory), else CODINGPLAN_API_KEY. An unreadable file is an
// error; the environment's key is not used then.
func (s Settings) APIKey(env Env) (wire.Secret, error) {
	if s.APIKeyFile == "" {
		return env.APIKey, nil
	}
	name := s.APIKeyFile
	if rest, ok := strings.CutPrefix(name, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			name = filepath.Join(home, rest)
		}
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	return wire.Secret(strings.TrimSpace(line)), nil
}
