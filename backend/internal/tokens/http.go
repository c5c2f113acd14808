package tokens

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/codingplan/codingplan/backend/internal/store"
)

// MaxBodyBytes caps a request body of the token and device endpoints.
const MaxBodyBytes = 16 << 10

// RetryAfter is the Retry-After (seconds) of a 503 answered while the database is unavailable.
const RetryAfter = "5"

// Handler serves
//
//	POST /v1/token               the token endpoint (RFC 6749 §3.2, RFC 8628 §3.4)
//	POST /v1/device/code         the device authorization endpoint (RFC 8628 §3.1)
//	POST /v1/revoke              revoke a refresh token's sign-in (RFC 7009)
//	GET  /.well-known/jwks.json  the signing keys
//
// Rate limits are the caller's: wrap the handler.
func (i *Issuer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/token", i.serveToken)
	mux.HandleFunc("POST /v1/device/code", i.serveDeviceCode)
	mux.HandleFunc("POST /v1/revoke", i.serveRevoke)
	mux.HandleFunc("GET /.well-known/jwks.json", i.serveJWKS)
	return mux
}

// tokenRequest is a parsed, checked token endpoint request.
type tokenRequest struct {
	grantType    string
	clientID     string
	deviceCode   string
	refreshToken string
	apiKey       string
}

// readForm reads a capped form-encoded body. Every parameter may appear once (RFC 6749 §3.2).
func readForm(r *http.Request, w http.ResponseWriter) (url.Values, *oauthError) {
	if r.URL.RawQuery != "" {
		return nil, invalidRequest("parameters go in the form-encoded body, not the URL")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		return nil, invalidRequest("the body is over 16 KiB or could not be read")
	}
	return parseForm(r.Header.Get("Content-Type"), body)
}

func parseForm(contentType string, body []byte) (url.Values, *oauthError) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, invalidRequest("the body must be application/x-www-form-urlencoded")
	}
	if len(body) > MaxBodyBytes {
		return nil, invalidRequest("the body is over 16 KiB")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, invalidRequest("the body is not a valid form")
	}
	for k, v := range form {
		if len(v) != 1 {
			return nil, invalidRequest("a parameter appears more than once")
		}
		if !utf8.ValidString(k) || !utf8.ValidString(v[0]) {
			return nil, invalidRequest("the body is not UTF-8")
		}
	}
	return form, nil
}

// parseTokenRequest checks a token request's parameters.
func parseTokenRequest(form url.Values) (tokenRequest, *oauthError) {
	r := tokenRequest{grantType: form.Get("grant_type"), clientID: form.Get("client_id")}
	if form.Has("client_id") && !validClientID(r.clientID) {
		return tokenRequest{}, errInvalidClient
	}
	switch r.grantType {
	case "":
		return tokenRequest{}, invalidRequest("grant_type is missing")
	case GrantDeviceCode:
		r.deviceCode = form.Get("device_code")
		switch {
		case r.deviceCode == "":
			return tokenRequest{}, invalidRequest("device_code is missing")
		case r.clientID == "":
			return tokenRequest{}, invalidRequest("client_id is missing")
		case len(r.deviceCode) != deviceCodeLen:
			return tokenRequest{}, errInvalidGrant
		}
	case GrantRefresh:
		r.refreshToken = form.Get("refresh_token")
		switch {
		case r.refreshToken == "":
			return tokenRequest{}, invalidRequest("refresh_token is missing")
		case len(r.refreshToken) != refreshTokenLen:
			return tokenRequest{}, errInvalidGrant
		}
	case GrantAPIKey:
		r.apiKey = form.Get("api_key")
		switch {
		case r.apiKey == "":
			return tokenRequest{}, invalidRequest("api_key is missing")
		case len(r.apiKey) != apiKeyLen || !strings.HasPrefix(r.apiKey, APIKeyPrefix):
			return tokenRequest{}, errInvalidGrant
		}
	default:
		return tokenRequest{}, errUnsupportedGrant
	}
	return r, nil
}

// validClientID accepts a short printable name: "vscode", "neovim", "my-ci/1.2".
func validClientID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for j := 0; j < len(s); j++ {
		if s[j] <= ' ' || s[j] > '~' {
			return false
		}
	}
	return true
}

// publicForm reads the form of a request from a public client; it answers the error itself
// (ok false) for a request with client authentication or a malformed body.
func (i *Issuer) publicForm(w http.ResponseWriter, r *http.Request) (form url.Values, ok bool) {
	if r.Header.Get("Authorization") != "" {
		// Clients are public (RFC 8628 §3.1): no client authentication is offered.
		w.Header().Set("WWW-Authenticate", `Basic realm="codingplan"`)
		i.writeError(w, r, errInvalidClient)
		return nil, false
	}
	form, oerr := readForm(r, w)
	if oerr != nil {
		i.writeError(w, r, oerr)
		return nil, false
	}
	return form, true
}

func (i *Issuer) serveToken(w http.ResponseWriter, r *http.Request) {
	form, ok := i.publicForm(w, r)
	if !ok {
		return
	}
	req, oerr := parseTokenRequest(form)
	if oerr != nil {
		i.writeError(w, r, oerr)
		return
	}
	resp, err := i.grant(r.Context(), req)
	if err != nil {
		i.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (i *Issuer) serveDeviceCode(w http.ResponseWriter, r *http.Request) {
	form, oerr := readForm(r, w)
	if oerr != nil {
		i.writeError(w, r, oerr)
		return
	}
	client := form.Get("client_id")
	switch {
	case client == "":
		i.writeError(w, r, invalidRequest("client_id is missing"))
		return
	case !validClientID(client):
		i.writeError(w, r, errInvalidClient)
		return
	}
	g, err := i.startDevice(r.Context(), client)
	if err != nil {
		i.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, g)
}

func (i *Issuer) serveJWKS(w http.ResponseWriter, r *http.Request) {
	doc, err := i.JWKS(r.Context())
	if err != nil {
		i.log.Error("jwks", "err", err)
		http.Error(w, "no signing keys", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=30")
	w.Write(doc)
}

// writeError answers an OAuth error; any other error is a 503 when the database is unavailable
// and a 500 otherwise.
func (i *Issuer) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var oe *oauthError
	var rl *rateLimited
	switch {
	case errors.As(err, &oe):
	case errors.As(err, &rl):
		w.Header().Set("Retry-After", strconv.Itoa(int(max(1, (rl.wait+time.Second-1)/time.Second))))
		oe = errRateLimited
	case errors.Is(err, store.ErrUnavailable):
		i.log.Warn("token endpoint: database unavailable", "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", RetryAfter)
		oe = errUnavailable
	default:
		i.log.Error("token endpoint", "path", r.URL.Path, "err", err)
		oe = errServer
	}
	writeJSON(w, oe.status, oe)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
