package accounts

import (
	"context"
	"crypto/tls"
	"fmt"
	"mime"
	"net"
	"net/mail"
	"net/smtp"
	"strings"
	"sync"
	"time"
)

// Message is one mail the web pages send: plain text to one address.
type Message struct {
	To      string
	Subject string
	Body    string
	Sent    time.Time
}

// Mailer sends mail (*SMTP, or the server's in-memory mailbox when none is configured).
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

// SMTP sends mail through an SMTP server with net/smtp: STARTTLS when the server offers it,
// PLAIN authentication when a user is set (net/smtp sends credentials only over TLS or to
// localhost).
type SMTP struct {
	Addr     string // host:port
	From     string // RFC 5322 address
	Username string
	Password string
}

// smtpTimeout bounds one delivery when the context has no earlier deadline.
const smtpTimeout = 30 * time.Second

// Send delivers m.
func (c *SMTP) Send(ctx context.Context, m Message) error {
	from, err := mail.ParseAddress(c.From)
	if err != nil {
		return fmt.Errorf("mail: from: %w", err)
	}
	if strings.ContainsAny(m.To+m.Subject, "\r\n") {
		return fmt.Errorf("mail: a header holds a line break")
	}
	ctx, cancel := context.WithTimeout(ctx, smtpTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("mail: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	host, _, _ := net.SplitHostPort(c.Addr)
	cl, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("mail: %w", err)
	}
	defer cl.Close()
	if ok, _ := cl.Extension("STARTTLS"); ok {
		if err := cl.StartTLS(&tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}); err != nil {
			return fmt.Errorf("mail: starttls: %w", err)
		}
	}
	if c.Username != "" {
		if err := cl.Auth(smtp.PlainAuth("", c.Username, c.Password, host)); err != nil {
			return fmt.Errorf("mail: auth: %w", err)
		}
	}
	if err := cl.Mail(from.Address); err != nil {
		return fmt.Errorf("mail: %w", err)
	}
	if err := cl.Rcpt(m.To); err != nil {
		return fmt.Errorf("mail: %w", err)
	}
	w, err := cl.Data()
	if err != nil {
		return fmt.Errorf("mail: %w", err)
	}
	if _, err := w.Write(compose(from.String(), m)); err != nil {
		return fmt.Errorf("mail: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("mail: %w", err)
	}
	return cl.Quit()
}

// compose is the message as sent: headers, then the body with CRLF line ends.
func compose(from string, m Message) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\n", from, m.To,
		mimeWord(m.Subject), m.Sent.Format(time.RFC1123Z))
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	b.WriteString(strings.ReplaceAll(strings.ReplaceAll(m.Body, "\r\n", "\n"), "\n", "\r\n"))
	return []byte(b.String())
}

func mimeWord(s string) string { return mime.QEncoding.Encode("utf-8", s) }

// mailbox keeps the last mails sent when no SMTP server is configured, for /dev/mail.
type mailbox struct {
	mu    sync.Mutex
	mails []Message
}

// mailboxSize is how many mails the mailbox keeps.
const mailboxSize = 100

func (b *mailbox) Send(_ context.Context, m Message) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.mails = append(b.mails, m)
	if len(b.mails) > mailboxSize {
		b.mails = b.mails[len(b.mails)-mailboxSize:]
	}
	return nil
}

// list returns the mails, newest first.
func (b *mailbox) list() []Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Message, len(b.mails))
	for i, m := range b.mails {
		out[len(out)-1-i] = m
	}
	return out
}
