package accounts

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"
)

// What the pages accept in their fields. Each check returns the message to show next to the
// field, or "" when the value is fine.

// maxEmail is the longest address SMTP carries (RFC 5321: a 254-character path).
const maxEmail = 254

// minPassword is the shortest password the sign-up and reset pages accept.
const minPassword = 8

func checkEmail(v string) string {
	switch {
	case v == "":
		return "Enter your email address."
	case len(v) > maxEmail:
		return "An email address has at most 254 characters."
	case !cleanText(v) || strings.ContainsFunc(v, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return "Enter an email address like name@example.com, without spaces."
	}
	a, err := mail.ParseAddress(v)
	if err != nil || a.Address != v || a.Name != "" || !strings.Contains(v[strings.LastIndexByte(v, '@')+1:], ".") &&
		!strings.HasSuffix(v, "@localhost") {
		return "Enter an email address like name@example.com."
	}
	return ""
}

// checkNewPassword checks a password being set, and that confirm repeats it.
func checkNewPassword(v string) string {
	switch {
	case v == "":
		return "Choose a password."
	case len(v) > maxCredential:
		return "A password has at most 1024 bytes."
	case !cleanText(v):
		return "The password holds characters that cannot be used (a NUL byte or invalid UTF-8)."
	case utf8.RuneCountInString(v) < minPassword:
		return "Use at least 8 characters."
	}
	return ""
}

// checkName checks a display name (an account's, an API key's): up to 100 letters, digits,
// spaces and a few punctuation marks, so that neither markup nor SQL looks like a name.
func checkName(v string, required bool) string {
	switch {
	case v == "" && required:
		return "Enter a name."
	case v == "":
		return ""
	case !cleanText(v):
		return "The name holds characters that cannot be used."
	case utf8.RuneCountInString(v) > 100:
		return "A name has at most 100 characters."
	}
	for _, r := range v {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != ' ' && !strings.ContainsRune(nameMarks, r) {
			return "Use letters, digits, spaces and " + nameMarks + " only."
		}
	}
	return ""
}

const nameMarks = "-_.,'()@+:/#&"
