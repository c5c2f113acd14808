package valkeytest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/valkey-io/valkey-go"
)

// Environment variables naming the Valkey deployments that make test starts for the tests.
const (
	EnvSingle  = "CODINGPLAN_TEST_VALKEY"         // a single server
	EnvCluster = "CODINGPLAN_TEST_VALKEY_CLUSTER" // a seed of a cluster
	EnvRequire = "CODINGPLAN_REQUIRE_VALKEY"      // "1": a missing one fails the test
)

// Dial returns a client for the Valkey whose address env names, closed when the test ends. When
// env is unset it skips the test, or fails it with CODINGPLAN_REQUIRE_VALKEY=1.
func Dial(t testing.TB, env string) valkey.Client {
	t.Helper()
	addr := os.Getenv(env)
	if addr == "" {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("%s=1 but %s is not set", EnvRequire, env)
		}
		t.Skipf("no Valkey: set %s", env)
	}
	return DialAddr(t, addr)
}

// DialAddr returns a client for the Valkey at addr (a single server or a cluster seed), closed
// when the test ends.
func DialAddr(t testing.TB, addr string) valkey.Client {
	t.Helper()
	c, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{addr}, DisableCache: true})
	if err != nil {
		t.Fatalf("valkey %s: %v", addr, err)
	}
	t.Cleanup(c.Close)
	return c
}

// Prefix returns a key prefix of the test's own: name and random hex digits.
func Prefix(name string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return name + "-" + hex.EncodeToString(b[:])
}
