package tokens

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// FuzzTokenRequest sends arbitrary bodies to the token endpoint of an issuer on a real SQLite
// store that holds one valid API key: nothing panics, every answer is JSON with Cache-Control:
// no-store, and a token comes back only for a request that carries exactly that key.
//
//	go test -run '^$' -fuzz FuzzTokenRequest -fuzztime 60s ./backend/internal/tokens/
func FuzzTokenRequest(f *testing.F) {
	st := openSQLite(f)
	iss := newIssuer(f, st, nil)
	h := iss.Handler()
	acct := newAccount(f, st, "fuzz@example.com", "pro")
	key, _, err := iss.NewAPIKey(f.Context(), acct.ID, "fuzz")
	if err != nil {
		f.Fatal(err)
	}
	const form = "application/x-www-form-urlencoded"
	f.Add(form, "grant_type="+url.QueryEscape(GrantAPIKey)+"&api_key="+key)
	f.Add(form, "grant_type="+url.QueryEscape(GrantAPIKey)+"&api_key="+key+"&client_id=ci")
	f.Add(form, "grant_type=refresh_token&refresh_token="+random(32))
	f.Add(form, "grant_type="+url.QueryEscape(GrantDeviceCode)+"&device_code="+random(32)+"&client_id=vscode")
	f.Add(form+"; charset=utf-8", "grant_type=refresh_token&refresh_token=%00%ff")
	f.Add("application/json", `{"grant_type":"refresh_token"}`)
	f.Add(form, "grant_type=refresh_token&grant_type=refresh_token")
	f.Add(form, ";;;&&&==%%")
	f.Add("multipart/form-data; boundary=x", "--x\r\n\r\n--x--")

	f.Fuzz(func(t *testing.T, ctype, body string) {
		form, oerr := parseForm(ctype, []byte(body))
		var parsed tokenRequest
		if oerr == nil {
			parsed, oerr = parseTokenRequest(form)
		}
		req := httptest.NewRequest(http.MethodPost, "/v1/token", bytes.NewReader([]byte(body)))
		req.Header.Set("Content-Type", ctype)
		a := do(t, h, req)
		if a.body == nil {
			t.Fatalf("answer %d is not JSON", a.status)
		}
		if a.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("answer %d without Cache-Control: no-store", a.status)
		}
		issued := a.status == http.StatusOK || a.str("access_token") != ""
		valid := oerr == nil && parsed.grantType == GrantAPIKey && parsed.apiKey == key
		if issued != valid {
			t.Fatalf("issued %v (answer %d %v) for a request that is valid: %v (%+v, %v)", issued, a.status, a.body, valid, parsed, oerr)
		}
		if oerr != nil && (a.status != oerr.status || a.str("error") != oerr.Code) {
			t.Fatalf("parser says %v, endpoint answered %d %v", oerr, a.status, a.body)
		}
	})
}
