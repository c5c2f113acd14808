package accounts

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

// smtpServer is a minimal SMTP server on loopback (no STARTTLS, no AUTH): it accepts one
// message and hands over the commands and the data it received.
func smtpServer(t *testing.T) (addr string, got <-chan []string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan []string, 1)
	go func() { // ends when the client quits or the listener closes
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		rd := bufio.NewReader(c)
		say := func(s string) { c.Write([]byte(s + "\r\n")) }
		var lines []string
		say("220 test ESMTP")
		for {
			l, err := rd.ReadString('\n')
			if err != nil {
				ch <- lines
				return
			}
			l = strings.TrimRight(l, "\r\n")
			lines = append(lines, l)
			switch cmd := strings.ToUpper(strings.Fields(l + " x")[0]); cmd {
			case "EHLO", "HELO":
				say("250 test")
			case "DATA":
				say("354 go on")
				for {
					d, err := rd.ReadString('\n')
					if err != nil {
						ch <- lines
						return
					}
					d = strings.TrimRight(d, "\r\n")
					if d == "." {
						break
					}
					lines = append(lines, d)
				}
				say("250 queued")
			case "QUIT":
				say("221 bye")
				ch <- lines
				return
			default:
				say("250 ok")
			}
		}
	}()
	return ln.Addr().String(), ch
}

func TestSMTP(t *testing.T) {
	addr, got := smtpServer(t)
	m := &SMTP{Addr: addr, From: "codingplan <noreply@example.com>"}
	err := m.Send(t.Context(), Message{To: "ada@example.com", Subject: "Confirm your codingplan account",
		Body: "Follow:\nhttps://accounts.example.com/verify?token=abc\n", Sent: testNow})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	select {
	case lines = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the server got no mail")
	}
	all := strings.Join(lines, "\n")
	for _, want := range []string{"MAIL FROM:<noreply@example.com>", "RCPT TO:<ada@example.com>", "From: \"codingplan\" <noreply@example.com>",
		"To: ada@example.com", "Subject: Confirm your codingplan account", "Content-Type: text/plain; charset=utf-8",
		"https://accounts.example.com/verify?token=abc"} {
		if !strings.Contains(all, want) {
			t.Errorf("the server did not get %q:\n%s", want, all)
		}
	}
	if err := m.Send(t.Context(), Message{To: "a@example.com\r\nBcc: eve@example.com", Subject: "x"}); err == nil {
		t.Error("a header with a line break was sent")
	}
}
