package remote

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/codingplan/codingplan/lsp/internal/config"
)

// Transport is how the connection is secured, from the settings allowInsecureBackend and
// caFile. The zero value refuses ws:// to other machines and trusts the system's roots.
type Transport struct {
	// AllowInsecure lets a ws:// URL reach a host other than loopback.
	AllowInsecure bool
	// CAFile is a PEM file of CA certificates trusted besides the system's roots (which the
	// SSL_CERT_FILE and SSL_CERT_DIR environment variables replace, as Go reads them).
	CAFile string
}

// ErrNoCertificate: the CA file holds no PEM certificate.
var ErrNoCertificate = errors.New("no PEM certificate in it")

// refuses reports why url may not be dialled, or "" when it may.
func (t Transport) refuses(url string) string {
	if config.Insecure(url) && !t.AllowInsecure {
		return "refused: " + config.ErrInsecureBackend.Error()
	}
	return ""
}

// tlsConfig returns the TLS configuration of a dial: nil (Go's defaults, the system's roots)
// without a CA file, else the system's roots plus the file's certificates. The file is read
// at each dial, so a renewed one is used from the next connection on.
func (t Transport) tlsConfig() (*tls.Config, error) {
	if t.CAFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(t.CAFile)
	if err != nil {
		return nil, fmt.Errorf("caFile: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("caFile %s: %w", t.CAFile, ErrNoCertificate)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// SetTransport changes how connections are secured. A change closes the connection to new
// streams (running ones finish on it) and connects again under the new rules.
func (c *Client) SetTransport(t Transport) {
	c.reconnectIf(func() bool {
		changed := t != c.transport
		c.transport = t
		return changed
	})
}
