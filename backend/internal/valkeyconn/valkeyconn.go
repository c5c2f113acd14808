// Package valkeyconn builds valkey-go client options from a plane's Valkey settings: the
// addresses, an ACL user and a password read from a named environment variable, and TLS. Both
// planes (the routing plane's codingplan-backend and the account plane) connect through it, so
// a managed Valkey is configured the same way for each.
package valkeyconn

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"github.com/valkey-io/valkey-go"
)

// Config is how to reach one Valkey (a server or a cluster). It holds no secret: the password
// stays in the environment variable PasswordEnv names until Options reads it.
type Config struct {
	// Addrs are the server's address, or the cluster's seeds; empty means no Valkey.
	Addrs []string
	// Cluster selects a cluster client.
	Cluster bool
	// Username is the ACL user; empty authenticates as the default user (with a password) or
	// not at all.
	Username string
	// PasswordEnv names the environment variable that holds the password; empty: none.
	PasswordEnv string
	// TLS turns on TLS (1.2 or later) to every node.
	TLS bool
	// TLSCA is a PEM file of the certificates to trust; empty: the system's roots.
	TLSCA string
	// TLSServerName is the name to verify in the server's certificate; empty: each node's
	// host, as dialled.
	TLSServerName string
	// TLSCert and TLSKey are PEM files of a client certificate and its key, for servers that
	// ask for one; both or neither.
	TLSCert, TLSKey string
}

// Options returns the client options for c, reading the password with getenv (os.Getenv when
// nil). The errors name the setting at fault and never hold the password.
func Options(c Config, getenv func(string) string) (valkey.ClientOption, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	opt := valkey.ClientOption{
		InitAddress:       c.Addrs,
		DisableCache:      true,
		ForceSingleClient: !c.Cluster,
		Username:          c.Username,
	}
	if len(c.Addrs) == 0 {
		return opt, errors.New("valkey: no address")
	}
	if c.PasswordEnv != "" {
		opt.Password = getenv(c.PasswordEnv)
		if opt.Password == "" {
			return opt, fmt.Errorf("valkey_password_env: the variable %s is unset or empty", c.PasswordEnv)
		}
	}
	if !c.TLS {
		if c.TLSCA != "" || c.TLSServerName != "" || c.TLSCert != "" || c.TLSKey != "" {
			return opt, errors.New("valkey_tls_* settings are given but valkey_tls is off")
		}
		return opt, nil
	}
	tc, err := tlsConfig(c)
	if err != nil {
		return opt, err
	}
	opt.TLSConfig = tc
	return opt, nil
}

// tlsConfig is the TLS configuration of c.
func tlsConfig(c Config) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.TLSServerName}
	if c.TLSCA != "" {
		pem, err := os.ReadFile(c.TLSCA)
		if err != nil {
			return nil, fmt.Errorf("valkey_tls_ca: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("valkey_tls_ca: %s holds no PEM certificate", c.TLSCA)
		}
	}
	switch {
	case c.TLSCert != "" && c.TLSKey != "":
		cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("valkey_tls_cert and valkey_tls_key: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	case c.TLSCert != "" || c.TLSKey != "":
		return nil, errors.New("valkey_tls_cert and valkey_tls_key must be given together")
	}
	return tc, nil
}

// Cause names, for a log, why a connection to Valkey configured by c failed: "tls" (the
// handshake or the server's certificate), "auth" (the user or password was refused, or the user
// lacks a permission), or "network" (with a hint when the server may want TLS or a client
// certificate that c lacks).
func Cause(c Config, err error) string {
	var (
		verify  *tls.CertificateVerificationError
		header  tls.RecordHeaderError
		alert   tls.AlertError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
	)
	switch {
	case err == nil:
		return ""
	case c.TLSCert == "" && strings.Contains(err.Error(), "tls: certificate required"):
		// TLS 1.3: the server's alert, when it arrives before the connection is closed.
		return "tls: the server wants a client certificate; set valkey_tls_cert and valkey_tls_key"
	case errors.As(err, &verify), errors.As(err, &header), errors.As(err, &alert),
		errors.As(err, &unknown), errors.As(err, &host), strings.Contains(err.Error(), "tls: "):
		return "tls"
	}
	if ve, ok := valkey.IsValkeyErr(err); ok {
		msg := ve.Error()
		for _, p := range []string{"WRONGPASS", "NOAUTH", "NOPERM"} {
			if strings.HasPrefix(msg, p) {
				return "auth"
			}
		}
	}
	closed := errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
	switch {
	case closed && !c.TLS:
		// A TLS-only server closes a connection whose first bytes are no TLS handshake.
		return "network: the server closed the connection; if it wants TLS, set valkey_tls"
	case closed && c.TLSCert == "":
		// Under TLS 1.3 a server that wants a client certificate says so after the client
		// thinks the handshake is over, by closing the connection.
		return "network: the server closed the connection; if it wants a client certificate, set valkey_tls_cert and valkey_tls_key"
	}
	return "network"
}

// Addrs reads the two settings both binaries name valkey and valkey_cluster: valkey is one
// address (or a cluster's seed when valkeyCluster is "true"); valkeyCluster is "", "false",
// "true" or a comma-separated list of seeds. It returns the addresses and whether they are a
// cluster's seeds; none when no Valkey is configured.
func Addrs(valkey, valkeyCluster string) (addrs []string, cluster bool, err error) {
	switch v := strings.TrimSpace(valkeyCluster); v {
	case "", "false":
		if valkey == "" {
			return nil, false, nil
		}
		return []string{valkey}, false, nil
	case "true":
		if valkey == "" {
			return nil, false, errors.New("valkey_cluster is true but valkey (the seed) is empty")
		}
		return []string{valkey}, true, nil
	default:
		for _, a := range strings.Split(v, ",") {
			if a = strings.TrimSpace(a); a != "" {
				addrs = append(addrs, a)
			}
		}
		return addrs, true, nil
	}
}
