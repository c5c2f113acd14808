package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"
)

// The zero-retention test's instruments: canaries and the search for them, a Valkey MONITOR
// capture, a dump of the keyspace, and file walks.

// canary is a random marker put into content at one place.
type canary struct {
	label  string // where it was put
	value  string
	secret bool // a credential: searched whole and by its signature, not by fragments
}

// canaryAlphabet leaves out the hex digits, so no id or hash a log holds can match a fragment
// of a canary by chance; 40 symbols make an 8-symbol fragment one in 6.5e12.
const canaryAlphabet = "ghijklmnopqrstuvwxyzGHIJKLMNOPQRSTUVWXYZ"

// fragmentLen is the length of the fragments searched in text captures: the echo model
// streams in 8-byte chunks, so a log that printed chunks one by one shows 8-byte pieces.
const fragmentLen = 8

func newCanary(label string) canary {
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	for i := range b {
		b[i] = canaryAlphabet[int(b[i])%len(canaryAlphabet)]
	}
	return canary{label: label, value: "CANARY" + string(b)}
}

// form is one way a canary can show up.
type form struct {
	name   string
	needle []byte
	fold   bool // case-insensitive
	text   bool // searched in text captures only (fragments: too short for binary files)
}

func (c canary) forms() []form {
	v := []byte(c.value)
	fs := []form{{name: "as is", needle: v, fold: true}}
	if c.secret {
		if i := strings.LastIndexByte(c.value, '.'); i > 0 && len(c.value)-i > 16 {
			fs = append(fs, form{name: "signature", needle: v[i+1:]})
		}
		return fs
	}
	fs = append(fs, form{name: "hex", needle: []byte(hex.EncodeToString(v)), fold: true})
	for _, enc := range []struct {
		name string
		e    *base64.Encoding
	}{{"base64", base64.StdEncoding}, {"base64url", base64.URLEncoding}} {
		for off := range 3 {
			fs = append(fs, form{name: fmt.Sprintf("%s+%d", enc.name, off), needle: base64Core(enc.e, v, off)})
		}
	}
	random := v[len("CANARY"):]
	for i := 0; i+fragmentLen <= len(random); i++ {
		fs = append(fs, form{name: "fragment " + string(random[i:i+fragmentLen]), needle: random[i : i+fragmentLen], text: true})
	}
	return fs
}

// base64Core returns the base64 characters that come from v alone when v starts off bytes
// into a 3-byte group, so v is found in base64 whatever precedes it.
func base64Core(e *base64.Encoding, v []byte, off int) []byte {
	in := append(make([]byte, off), v...)
	out := e.EncodeToString(in)
	from := (off*8 + 5) / 6
	to := (len(in) * 8) / 6
	return []byte(out[from:to])
}

// hit is one canary found somewhere.
type hit struct {
	where, label, form, context string
}

func (h hit) String() string {
	return fmt.Sprintf("%s: canary %q (%s) near %q", h.where, h.label, h.form, h.context)
}

// findCanaries searches data for every form of every canary. text says data is a text
// capture, where fragments are searched too.
func findCanaries(where string, data []byte, text bool, cs []canary) []hit {
	var hits []hit
	lower := bytes.ToLower(data)
	for _, c := range cs {
		for _, f := range c.forms() {
			if f.text && !text {
				continue
			}
			hay, needle := data, f.needle
			if f.fold {
				hay, needle = lower, bytes.ToLower(needle)
			}
			if i := bytes.Index(hay, needle); i >= 0 {
				hits = append(hits, hit{where: where, label: c.label, form: f.name, context: excerpt(data, i, len(needle))})
				break // one form per canary and place is enough to say where it leaked
			}
		}
	}
	return hits
}

func excerpt(data []byte, i, n int) string {
	from, to := max(0, i-60), min(len(data), i+n+60)
	return strings.ToValidUTF8(string(data[from:to]), "?")
}

// monitor is a Valkey MONITOR capture written to a file: every command any client sends
// while it runs, arguments included.
type monitor struct {
	path   string
	conn   net.Conn
	done   chan struct{}
	fence  []byte
	fenced chan struct{} // closed when a line holding fence was captured
	err    error
}

// startMonitor starts capturing into path. fence is a marker a later command carries: seeing
// it proves every command before it was captured.
func startMonitor(t *testing.T, addr, path, fence string) *monitor {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("monitor: %v", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReaderSize(conn, 1<<20)
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("*1\r\n$7\r\nMONITOR\r\n")); err != nil {
		t.Fatalf("monitor: %v", err)
	}
	if line, err := r.ReadString('\n'); err != nil || line != "+OK\r\n" {
		t.Fatalf("monitor: answered %q, %v", line, err)
	}
	_ = conn.SetDeadline(time.Time{})
	m := &monitor{path: path, conn: conn, done: make(chan struct{}), fence: []byte(fence), fenced: make(chan struct{})}
	go func() {
		defer close(m.done)
		defer f.Close()
		w := bufio.NewWriterSize(f, 1<<20)
		defer w.Flush()
		fenced := false
		for {
			line, err := r.ReadSlice('\n')
			if _, werr := w.Write(line); werr != nil && m.err == nil {
				m.err = werr
			}
			if !fenced && bytes.Contains(line, m.fence) {
				fenced = true
				close(m.fenced)
			}
			if err != nil && err != bufio.ErrBufferFull {
				return
			}
		}
	}()
	t.Cleanup(m.stop)
	return m
}

// stop ends the capture and waits until the file is complete.
func (m *monitor) stop() {
	m.conn.Close()
	<-m.done
}

// valkeyKey is one key's content as read back by its type.
type valkeyKey struct {
	db        int
	key, kind string
	pttl      int64
	dump      []byte // the key's name, then every field, member, score and value
}

// dumpKeyspace reads back every key of every database that has keys, with the read that
// suits its type. Keys that vanish or change while it reads are skipped; other errors fail.
func dumpKeyspace(ctx context.Context, t *testing.T, addr string) []valkeyKey {
	t.Helper()
	c0, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{addr}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c0.Close()
	info, err := c0.Do(ctx, c0.B().Info().Section("keyspace").Build()).ToString()
	if err != nil {
		t.Fatalf("INFO keyspace: %v", err)
	}
	dbs := []int{0}
	for _, line := range strings.Split(info, "\n") {
		name, _, ok := strings.Cut(strings.TrimSpace(line), ":")
		if n, err := strconv.Atoi(strings.TrimPrefix(name, "db")); ok && err == nil && strings.HasPrefix(name, "db") && n != 0 {
			dbs = append(dbs, n)
		}
	}
	var out []valkeyKey
	for _, db := range dbs {
		c := c0
		if db != 0 {
			if c, err = valkey.NewClient(valkey.ClientOption{InitAddress: []string{addr}, DisableCache: true, SelectDB: db}); err != nil {
				t.Fatal(err)
			}
			defer c.Close()
		}
		var cursor uint64
		for {
			e, err := c.Do(ctx, c.B().Scan().Cursor(cursor).Count(1000).Build()).AsScanEntry()
			if err != nil {
				t.Fatalf("SCAN db %d: %v", db, err)
			}
			for _, k := range e.Elements {
				if vk, ok := readKey(ctx, t, c, db, k); ok {
					out = append(out, vk)
				}
			}
			if cursor = e.Cursor; cursor == 0 {
				break
			}
		}
	}
	return out
}

func readKey(ctx context.Context, t *testing.T, c valkey.Client, db int, key string) (valkeyKey, bool) {
	t.Helper()
	kind, err := c.Do(ctx, c.B().Type().Key(key).Build()).ToString()
	if err != nil {
		t.Fatalf("TYPE %s: %v", key, err)
	}
	vk := valkeyKey{db: db, key: key, kind: kind, dump: []byte(key + "\n")}
	var cmd valkey.Completed
	switch kind {
	case "none":
		return vk, false
	case "string":
		cmd = c.B().Get().Key(key).Build()
	case "hash":
		cmd = c.B().Hgetall().Key(key).Build()
	case "list":
		cmd = c.B().Lrange().Key(key).Start(0).Stop(-1).Build()
	case "set":
		cmd = c.B().Smembers().Key(key).Build()
	case "zset":
		cmd = c.B().Zrange().Key(key).Min("0").Max("-1").Withscores().Build()
	case "stream":
		cmd = c.B().Xrange().Key(key).Start("-").End("+").Build()
	default:
		cmd = c.B().Dump().Key(key).Build() // a module type: its serialized form
	}
	res := c.Do(ctx, cmd)
	if err := res.Error(); err != nil {
		if valkey.IsValkeyNil(err) || strings.Contains(err.Error(), "WRONGTYPE") {
			return vk, false // gone or replaced meanwhile (another test's key)
		}
		t.Fatalf("reading %s key %s: %v", kind, key, err)
	}
	vk.dump = appendMessage(vk.dump, res)
	vk.pttl, _ = c.Do(ctx, c.B().Pttl().Key(key).Build()).AsInt64()
	return vk, true
}

// appendMessage flattens a reply, nested arrays and maps included, one value a line.
func appendMessage(dst []byte, res valkey.ValkeyResult) []byte {
	msg, err := res.ToMessage()
	if err != nil {
		return dst
	}
	return appendValue(dst, msg)
}

func appendValue(dst []byte, m valkey.ValkeyMessage) []byte {
	if arr, err := m.ToArray(); err == nil {
		for _, e := range arr {
			dst = appendValue(dst, e)
		}
		return dst
	}
	if mp, err := m.AsMap(); err == nil {
		for k, v := range mp {
			dst = append(dst, k...)
			dst = append(dst, '\n')
			dst = appendValue(dst, v)
		}
		return dst
	}
	if s, err := m.ToString(); err == nil {
		return append(append(dst, s...), '\n')
	}
	if n, err := m.AsInt64(); err == nil {
		return append(strconv.AppendInt(dst, n, 10), '\n')
	}
	if f, err := m.AsFloat64(); err == nil {
		return append(strconv.AppendFloat(dst, f, 'g', -1, 64), '\n')
	}
	return dst
}

// walkFiles calls f with the path and content of every regular file under dir that passes
// keep (nil keeps all). A missing dir is empty.
func walkFiles(t *testing.T, dir string, keep func(path string, info fs.FileInfo) bool, f func(path string, data []byte)) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) || os.IsPermission(err) {
				return nil
			}
			return err
		}
		if d.IsDir() || !d.Type().IsRegular() {
			if d.IsDir() && keep != nil {
				if info, err := d.Info(); err == nil && !keep(path, info) {
					return filepath.SkipDir
				}
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil // removed meanwhile
		}
		if keep != nil && !keep(path, info) {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil // removed or unreadable meanwhile: another process's
		}
		n++
		f(path, data)
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", dir, err)
	}
	return n
}

// openFiles returns the content of every regular file a process holds open, deleted ones
// included (read through /proc/PID/fd), by the file's name.
func openFiles(t *testing.T, pid int) map[string][]byte {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("listing open files: %v", err)
	}
	out := map[string][]byte{}
	for _, e := range ents {
		fd := filepath.Join(dir, e.Name())
		target, err := os.Readlink(fd)
		if err != nil || !strings.HasPrefix(target, "/") || strings.HasPrefix(target, "/dev/") {
			continue // sockets, pipes, anon inodes, devices
		}
		st, err := os.Stat(fd)
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		f, err := os.Open(fd)
		if err != nil {
			continue
		}
		data, err := io.ReadAll(io.LimitReader(f, 256<<20))
		f.Close()
		if err == nil {
			out[target] = data
		}
	}
	return out
}

// coreLimit returns the soft and hard "Max core file size" of a process.
func coreLimit(t *testing.T, pid int) (soft, hard string) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatalf("reading limits: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max core file size"); ok {
			f := strings.Fields(rest)
			if len(f) >= 2 {
				return f[0], f[1]
			}
		}
	}
	t.Fatalf("no core file size in /proc/%d/limits:\n%s", pid, b)
	return "", ""
}

// TestCanarySearch checks the search itself: each way a canary can be stored is found, and
// text without it is not.
func TestCanarySearch(t *testing.T) {
	c := newCanary("c")
	tok := canary{label: "t", value: "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg", secret: true}
	for _, tc := range []struct {
		name string
		data string
		text bool
		want string // the form found; empty for none
	}{
		{"plain", "x " + c.value + " y", false, "as is"},
		{"upper", strings.ToUpper("x" + c.value), false, "as is"},
		{"json escaped around", `{"p":"\"` + c.value + `\n"}`, false, "as is"},
		{"base64 offset 0", base64.StdEncoding.EncodeToString([]byte(c.value)), false, "base64+0"},
		{"base64 offset 1", base64.StdEncoding.EncodeToString([]byte("a" + c.value)), false, "base64+1"},
		{"base64 offset 2", base64.StdEncoding.EncodeToString([]byte("ab" + c.value)), false, "base64+2"},
		{"base64url", base64.URLEncoding.EncodeToString([]byte("?>" + c.value + "?>")), false, "base64+2"}, // letters only: the same core
		{"hex", "0x" + hex.EncodeToString([]byte(c.value)), false, "hex"},
		{"an 8-byte chunk in text", `"chunk":"` + c.value[10:18] + `"`, true, "fragment " + c.value[10:18]},
		{"an 8-byte chunk in a binary file", c.value[10:18], false, ""},
		{"7 bytes", c.value[10:17], true, ""},
		{"nothing", "CANARY plain text, hex 0123456789abcdef, base64 QUJD", true, ""},
		{"token", "Bearer " + tok.value, false, "as is"},
		{"token signature", "sig=" + tok.value[strings.LastIndexByte(tok.value, '.')+1:], false, "signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hits := findCanaries("data", []byte(tc.data), tc.text, []canary{c, tok})
			got := ""
			if len(hits) > 0 {
				got = hits[0].form
			}
			if len(hits) > 1 || got != tc.want {
				t.Errorf("found %v, want form %q", hits, tc.want)
			}
		})
	}
}
