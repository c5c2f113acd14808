package accounts

import (
	"errors"
	"net/http"
	"strings"

	"github.com/codingplan/codingplan/backend/internal/store"
)

// The device page group: the approval page at the device flow's verification_uri (RFC 8628
// §3.3: the user code typed, or prefilled from verification_uri_complete), and signing devices
// out from the account page.

func (s *Server) deviceRoutes(pm *http.ServeMux) {
	pm.HandleFunc("GET /device", s.devicePage)
	pm.HandleFunc("POST /device", s.devicePost)
	pm.HandleFunc("POST /account/devices/{id}/revoke", s.revokeDevicePost)
}

// deviceView is the data of device.html: with Client set, the approve and deny buttons for
// Code; without, the form to type a code.
type deviceView struct {
	Code   string
	Client string
}

// findDevice looks the user code up: the pending sign-in, or the message to show next to the
// code field.
func (s *Server) findDevice(r *http.Request, typed string) (store.DeviceCode, string, error) {
	code := strings.TrimSpace(typed)
	switch {
	case code == "":
		return store.DeviceCode{}, "Enter the code your editor shows.", nil
	case !userCodeShape(code):
		return store.DeviceCode{}, "A code is 8 letters, like WDJB-MJHT.", nil
	case s.o.Devices == nil:
		return store.DeviceCode{}, "Device sign-in is not available on this server.", nil
	}
	d, err := s.o.Devices.Device(r.Context(), code)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return d, "No sign-in is waiting for this code. Check the code your editor shows.", nil
	case err != nil:
		return d, "", err
	case !s.now().Before(d.Expires):
		return d, "This code has expired. Start the sign-in in your editor again.", nil
	case d.Denied || d.AccountID != "":
		return d, "This code was used already. Start the sign-in in your editor again.", nil
	}
	return d, "", nil
}

func (s *Server) devicePage(w http.ResponseWriter, r *http.Request) {
	a, ok := s.pageAccount(w, r)
	if !ok {
		return
	}
	p := newPage("Sign in a device")
	p.Email = a.Email
	typed, given := r.URL.Query()["user_code"]
	if !given {
		p.Data = deviceView{}
		s.render(w, http.StatusOK, "device.html", p)
		return
	}
	s.showDevice(w, r, p, typed[0])
}

// showDevice renders the approval for the typed code, or the code form with its error.
func (s *Server) showDevice(w http.ResponseWriter, r *http.Request, p *page, typed string) {
	d, msg, err := s.findDevice(r, typed)
	if err != nil {
		s.pageStoreError(w, "device", err)
		return
	}
	if msg != "" {
		p.Form["user_code"] = strings.TrimSpace(typed)
		p.Errors["user_code"] = msg
		p.Data = deviceView{}
		s.render(w, http.StatusBadRequest, "device.html", p)
		return
	}
	p.Data = deviceView{Code: formatUserCode(d.UserCode), Client: d.Client}
	s.render(w, http.StatusOK, "device.html", p)
}

// userCodeShape reports whether typed can be a user code: 8 ASCII letters or digits, with
// dashes and spaces anywhere (the issuer then checks its alphabet).
func userCodeShape(typed string) bool {
	if len(typed) > 32 {
		return false
	}
	n := 0
	for _, r := range typed {
		switch {
		case r == '-' || r == ' ':
		case r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'):
			n++
		default:
			return false
		}
	}
	return n == 8
}

// formatUserCode shows a stored user code as XXXX-XXXX (tokens.FormatUserCode; this package
// does not import tokens).
func formatUserCode(c string) string {
	if len(c) == 8 {
		return c[:4] + "-" + c[4:]
	}
	return c
}

// devicePost approves or denies, limited per address and per account like POST
// /v1/device/approve (user codes are short: guessing must stay slow).
func (s *Server) devicePost(w http.ResponseWriter, r *http.Request) {
	a, f, p, ok := s.signedForm(w, r, "Sign in a device")
	if !ok {
		return
	}
	p.Data = deviceView{}
	action := f.Get("action")
	if action != "approve" && action != "deny" {
		p.Form["user_code"] = strings.TrimSpace(f.Get("user_code"))
		p.Errors["user_code"] = "Choose Approve or Deny."
		s.render(w, http.StatusBadRequest, "device.html", p)
		return
	}
	if !s.pageAllow(w, p, "device.html", "user_code", s.limits.device, clientAddr(r)) ||
		!s.pageAllow(w, p, "device.html", "user_code", s.limits.deviceAccount, a.ID) {
		return
	}
	d, msg, err := s.findDevice(r, f.Get("user_code"))
	if err == nil && msg == "" && s.o.Approver == nil {
		msg = "Device sign-in is not available on this server."
	}
	if err == nil && msg == "" {
		if action == "approve" {
			err = s.o.Approver.Approve(r.Context(), d.UserCode, a.ID)
		} else {
			err = s.o.Approver.Deny(r.Context(), d.UserCode)
		}
		switch {
		case errors.Is(err, store.ErrNotFound):
			msg, err = "This code cannot be used any more. Start the sign-in in your editor again.", nil
		case errors.Is(err, ErrNotEntitled):
			msg, err = "Your account has no active plan, so it cannot sign in editors. Choose a plan on the billing page first.", nil
		}
	}
	if err != nil {
		s.pageStoreError(w, "device "+action, err)
		return
	}
	if msg != "" {
		p.Form["user_code"] = strings.TrimSpace(f.Get("user_code"))
		p.Errors["user_code"] = msg
		s.render(w, http.StatusBadRequest, "device.html", p)
		return
	}
	s.log.Info("device sign-in decided", "account", a.ID, "action", action, "via", "page")
	if action == "deny" {
		s.renderMessage(w, http.StatusOK, "Sign-in denied", message{
			Text: d.Client + " was not signed in. You can close this page.", Link: "/account", LinkText: "Your account"})
		return
	}
	s.renderMessage(w, http.StatusOK, "Device approved", message{
		Text: d.Client + " is signed in to your account. Go back to your editor; you can close this page.",
		Link: "/account", LinkText: "Your account"})
}

func (s *Server) revokeDevicePost(w http.ResponseWriter, r *http.Request) {
	a, ok := s.pageAccount(w, r)
	if !ok {
		return
	}
	s.revokeOne(w, r, a.ID, "device", s.o.Store.RevokeFamily, "device-revoked")
}
