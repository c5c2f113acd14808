package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.lsp.dev/protocol"
	"go.lsp.dev/uri"

	"github.com/codingplan/codingplan/lsp/internal/config"
	"github.com/codingplan/codingplan/lsp/internal/lspx"
	"github.com/codingplan/codingplan/lsp/internal/signin"
	wire "github.com/codingplan/codingplan/shared"
)

// The token the backend connection gets is, in order: one given to codingplan.signIn (or the
// empty one of codingplan.signOut); the token setting (or CODINGPLAN_TOKEN), unless a device
// sign-in came after it; the keeper's access token (a device sign-in, or an API key).

// tokenLocked is the token the backend connection should have; s.mu is held.
func (s *Server) tokenLocked() wire.Secret {
	switch {
	case s.signedIn != nil:
		return *s.signedIn
	case s.settings.Token != "" && !s.preferManaged:
		return s.settings.Token
	}
	return s.managed
}

// applyToken hands the token the backend connection should have to it.
func (s *Server) applyToken() {
	s.mu.Lock()
	token := s.tokenLocked()
	s.mu.Unlock()
	if s.cfg.Backend != nil {
		s.cfg.Backend.SetToken(token)
	}
}

// setManaged is the keeper's: a new access token, or "" when its sign-in ended.
func (s *Server) setManaged(token wire.Secret) {
	s.mu.Lock()
	s.managed = token
	s.mu.Unlock()
	s.applyToken()
}

// configureSignIn points the keeper at the settings' account service and API key.
func (s *Server) configureSignIn(ctx context.Context, st config.Settings, client string) {
	key, err := st.APIKey(s.cfg.Env)
	if err != nil {
		s.log.Warn("the API key file cannot be read", "err", err)
		s.showMessage(ctx, protocol.MessageTypeWarning, "codingplan: the API key file (apiKeyFile) cannot be read: "+err.Error())
	}
	if client == "" {
		client = "codingplan-lsp"
	}
	s.keeper.Configure(signin.NewService(st.ServiceURL(), client, nil, s.clockNow()), key)
}

func (s *Server) clockNow() func() time.Time {
	if s.cfg.Clock == nil {
		return nil
	}
	return s.cfg.Clock.Now
}

// refused is the backend connection's: it refused token. The keeper's tokens are renewed by
// the keeper (which tells the user when that fails); for a token of the user's, the user is
// told once.
func (s *Server) refused(token wire.Secret, code wire.Code) {
	s.keeper.Refused(token)
	s.mu.Lock()
	theirs := token != s.managed && token == s.tokenLocked()
	tell := theirs && s.toldRefused != token
	if tell {
		s.toldRefused = token
	}
	s.mu.Unlock()
	if !tell {
		return
	}
	msg := "the backend refused the token (revoked or not valid): sign in again"
	if code == wire.CodeTokenExpired {
		msg = "the token has expired: sign in again (a sign-in through Sign In is renewed by itself)"
	}
	s.signInLost(msg)
}

// signInLost tells the user, once, that the sign-in stopped working, offering to sign in.
func (s *Server) signInLost(message string) {
	s.goBackground("sign-in prompt", func(ctx context.Context) {
		var pick *lspx.DeviceAction
		err := s.call(ctx, protocol.MethodWindowShowMessageRequest, &lspx.ShowMessageRequestParams{
			Type: protocol.MessageTypeWarning, Message: "codingplan: " + message,
			Actions: []lspx.DeviceAction{{Title: lspx.ActionSignIn}},
		}, &pick)
		if err != nil || pick == nil || pick.Title != lspx.ActionSignIn {
			return
		}
		if _, err := s.deviceSignIn(ctx, nil); err != nil {
			s.log.Debug("sign-in from the prompt ended", "err", err)
		}
	})
}

// signInRun is codingplan.signIn without a token: the device sign-in.
func (s *Server) signInRun(token protocol.ProgressToken) runFunc {
	return func(ctx context.Context) (any, error) {
		if _, err := s.deviceSignIn(ctx, token); err != nil && ctx.Err() == nil {
			return nil, err
		}
		return s.status(nil), nil
	}
}

// deviceSignIn runs the device sign-in (RFC 8628, docs/accounts.md): it gets a code, asks the
// editor to show it (and open the page), and polls until the user approved it in the browser,
// under progress the user can cancel. Another sign-in started meanwhile ends this one. It
// reports whether the user is signed in; the user is told of every other outcome.
func (s *Server) deviceSignIn(ctx context.Context, token protocol.ProgressToken) (bool, error) {
	svc := s.keeper.Service()
	if svc == nil {
		return false, invalidRequest("codingplan.signIn: the server is not initialized")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	if s.signingIn != nil {
		s.signingIn() // the newer sign-in wins
	}
	s.signInSeq++
	seq := s.signInSeq
	s.signingIn = cancel
	s.mu.Unlock()
	replaced := func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.signInSeq != seq
	}
	defer func() {
		s.mu.Lock()
		if s.signInSeq == seq {
			s.signingIn = nil
		}
		s.mu.Unlock()
	}()

	d, err := svc.StartDevice(ctx)
	if err != nil {
		msg := "codingplan: the sign-in could not start: " + signInProblem(err, svc.URL())
		s.showMessage(ctx, protocol.MessageTypeError, msg)
		return false, errors.New(msg)
	}
	enter := fmt.Sprintf("enter the code %s at %s", d.UserCode, d.VerificationURI)
	pctx, prog := s.beginProgress(ctx, token, "codingplan: Sign in", "waiting for you to "+enter)
	defer prog.end("")
	s.goBackground("device code", func(bctx context.Context) { s.showDeviceCode(bctx, pctx, d, enter) })

	t, err := svc.Await(pctx, s.cfg.Clock, d)
	switch {
	case err == nil:
	case replaced():
		prog.end("replaced by a new sign-in")
		return false, nil
	case pctx.Err() != nil:
		prog.end("cancelled")
		s.showMessage(context.WithoutCancel(ctx), protocol.MessageTypeInfo, "codingplan: sign-in cancelled.")
		return false, nil
	default:
		prog.end("failed")
		s.showMessage(ctx, protocol.MessageTypeError, "codingplan: "+signInProblem(err, svc.URL()))
		return false, nil
	}
	if err := s.keeper.Adopt(t); err != nil {
		s.log.Warn("the sign-in could not be stored; it lasts until the editor closes", "err", err)
		s.showMessage(ctx, protocol.MessageTypeWarning, "codingplan: signed in, but the sign-in could not be stored ("+err.Error()+"); it lasts until the editor closes.")
	}
	s.mu.Lock()
	s.signedIn, s.preferManaged, s.toldRefused = nil, true, ""
	s.mu.Unlock()
	s.applyToken()
	prog.end("signed in")
	s.showMessage(ctx, protocol.MessageTypeInfo, "codingplan: signed in.")
	return true, nil
}

// showDeviceCode asks the editor to show the code, with the action that copies it and opens
// the page; when the editor did not open the page itself, the server asks it to
// (window/showDocument, external). It gives up when flow (the sign-in) ends.
func (s *Server) showDeviceCode(ctx, flow context.Context, d signin.Device, enter string) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(flow, cancel)
	defer stop()
	var pick *lspx.DeviceAction
	err := s.call(ctx, protocol.MethodWindowShowMessageRequest, &lspx.ShowMessageRequestParams{
		Type:    protocol.MessageTypeInfo,
		Message: "codingplan: to sign in, " + enter + " (the code is good for 15 minutes).",
		Actions: []lspx.DeviceAction{{Title: lspx.ActionCopyAndOpen, UserCode: d.UserCode, URI: d.CompleteURI}},
	}, &pick)
	if err != nil || pick == nil || pick.Title != lspx.ActionCopyAndOpen || pick.Opened {
		return
	}
	s.mu.Lock()
	canShow := s.caps.Window != nil && s.caps.Window.ShowDocument != nil && s.caps.Window.ShowDocument.Support
	s.mu.Unlock()
	if !canShow {
		return
	}
	var res protocol.ShowDocumentResult
	if err := s.call(ctx, protocol.MethodWindowShowDocument, &protocol.ShowDocumentParams{
		URI: uri.URI(d.CompleteURI), External: &[]bool{true}[0],
	}, &res); err != nil {
		s.log.Debug("window/showDocument failed", "err", err)
	}
}

// signOutRun is codingplan.signOut: the token of codingplan.signIn is dropped, the device
// sign-in revoked at the account service and its file deleted, and the connection closed.
func (s *Server) signOutRun() runFunc {
	s.mu.Lock()
	if s.signingIn != nil {
		s.signingIn()
	}
	s.preferManaged = false
	s.mu.Unlock()
	s.signIn("")
	return func(ctx context.Context) (any, error) {
		if err := s.keeper.SignOut(ctx); err != nil {
			s.showMessage(ctx, protocol.MessageTypeWarning, "codingplan: signed out here, but "+err.Error())
		}
		return s.status(nil), nil
	}
}

// signInProblem says what went wrong in a sentence for the user.
func signInProblem(err error, service string) string {
	switch {
	case errors.Is(err, signin.ErrDenied):
		return "the sign-in was denied in the browser."
	case errors.Is(err, signin.ErrExpired):
		return "the code expired before it was approved: run Sign In again."
	case errors.Is(err, signin.ErrUnavailable):
		return "the account service at " + service + " cannot be reached or cannot answer now (" + err.Error() + "); check accountsUrl, or try again later."
	}
	return sentence(err.Error())
}
