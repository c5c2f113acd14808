package accounts

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/codingplan/codingplan/backend/internal/store"
	"github.com/codingplan/codingplan/backend/internal/tokens"
)

// pageRig is a rig whose server keeps its mail in box, with the issuer deciding device
// sign-ins and the sign-in limits off unless a test sets them.
type pageRig struct {
	*rig
	box *mailbox
	iss *tokens.Issuer
	rec *recorder
}

func newPageRig(t *testing.T, st full, edit func(*Options)) *pageRig {
	t.Helper()
	pr := &pageRig{box: &mailbox{}, rec: &recorder{}}
	pr.rig = newRig(t, st, func(o *Options) {
		o.Mailer, o.Notify = pr.box, pr.rec
		o.Settings.SignupPlan = "lite"
		o.Settings.Rate.SessionPerMinute = 0
		o.Settings.Rate.DevicePerMinute = 0
		pr.iss = o.Keys.(*tokens.Issuer)
		o.Devices, o.Approver, o.Tokens = issuerAdapter{pr.iss}, issuerAdapter{pr.iss}, pr.iss.Handler()
		if edit != nil {
			edit(o)
		}
	})
	return pr
}

// issuerAdapter maps the issuer's device errors as codingplan-accounts' lazyIssuer does.
type issuerAdapter struct{ i *tokens.Issuer }

func adapt(err error) error {
	switch {
	case errors.Is(err, tokens.ErrUnknownCode), errors.Is(err, tokens.ErrExpired), errors.Is(err, tokens.ErrDecided):
		return fmt.Errorf("%w: %w", store.ErrNotFound, err)
	case errors.Is(err, tokens.ErrNotEntitled):
		return fmt.Errorf("%w: %w", ErrNotEntitled, err)
	}
	return err
}

func (a issuerAdapter) Approve(ctx context.Context, c, acct string) error {
	return adapt(a.i.Approve(ctx, c, acct))
}
func (a issuerAdapter) Deny(ctx context.Context, c string) error { return adapt(a.i.Deny(ctx, c)) }
func (a issuerAdapter) Device(ctx context.Context, c string) (store.DeviceCode, error) {
	d, err := a.i.Device(ctx, c)
	return d, adapt(err)
}

// noRedirects is a client with its own cookie jar that does not follow redirects.
func (r *pageRig) browser() *http.Client {
	c := r.client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

// post sends a form; values alternate names and values.
func (r *pageRig) post(c *http.Client, path string, values ...string) answer {
	r.t.Helper()
	f := url.Values{}
	for i := 0; i+1 < len(values); i += 2 {
		f.Add(values[i], values[i+1])
	}
	return r.do(c, "POST", path, f.Encode())
}

// pageSignIn signs c in through the sign-in page.
func (r *pageRig) pageSignIn(c *http.Client, email, password string) {
	r.t.Helper()
	if a := r.post(c, "/signin", "email", email, "password", password); a.code != http.StatusSeeOther {
		r.t.Fatalf("sign-in page: %d %s", a.code, a.raw)
	}
}

// dump is every row of the database, to show that a refused form changed nothing.
func (r *pageRig) dump() []store.Row {
	r.t.Helper()
	d, ok := r.st.(interface {
		Dump(context.Context) ([]store.Row, error)
	})
	if !ok {
		r.t.Fatal("store has no Dump")
	}
	rows, err := d.Dump(r.t.Context())
	if err != nil {
		r.t.Fatal(err)
	}
	return rows
}

func sameRows(t *testing.T, what string, before, after []store.Row) {
	t.Helper()
	if !reflect.DeepEqual(before, after) {
		t.Errorf("%s changed the database:\nbefore %v\nafter  %v", what, before, after)
	}
}

var linkRE = regexp.MustCompile(`https?://\S+`)

// lastLink is the link in the newest mail to to.
func (r *pageRig) lastLink(to string) string {
	r.t.Helper()
	for _, m := range r.box.list() {
		if m.To == to {
			if l := linkRE.FindString(m.Body); l != "" {
				return l
			}
		}
	}
	r.t.Fatalf("no mail with a link to %s (mails: %+v)", to, r.box.list())
	return ""
}

// pathOf is the path and query of a link the server mailed.
func pathOf(t *testing.T, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return u.RequestURI()
}

// fieldError is the message next to a field, or "".
func fieldError(html, name string) string {
	m := regexp.MustCompile(`<p class="error" id="` + regexp.QuoteMeta(name) + `-error">([^<]*)</p>`).FindStringSubmatch(html)
	if m == nil {
		return ""
	}
	return m[1]
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
