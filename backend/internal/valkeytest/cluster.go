package valkeytest

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"
)

// StartCluster runs a cluster of three primaries, each with a third of the slots, for the
// test, and waits until every node says the cluster is ok. With opt.TLS the nodes share one CA
// (the first node's CA) and talk to each other over TLS too. Its client port p has its cluster
// bus on p+10000.
func StartCluster(t testing.TB, opt Options) []*Server {
	t.Helper()
	opt.Cluster = true
	if opt.TLS && opt.CA == nil {
		opt.CA = NewCA(t)
	}
	nodes := make([]*Server, 3)
	clients := make([]valkey.Client, 3)
	for i := range nodes {
		nodes[i] = StartWith(t, opt)
		clients[i] = nodes[i].adminClient()
	}
	ctx := context.Background()
	const slots = 16384
	for i, c := range clients {
		lo, hi := i*slots/3, (i+1)*slots/3-1
		if err := c.Do(ctx, c.B().ClusterAddslotsrange().StartSlotEndSlot().StartSlotEndSlot(int64(lo), int64(hi)).Build()).Error(); err != nil {
			t.Fatalf("cluster addslotsrange on %s: %v", nodes[i].Addr(), err)
		}
	}
	for _, n := range nodes[1:] {
		if err := clients[0].Do(ctx, clients[0].B().ClusterMeet().Ip("127.0.0.1").Port(int64(n.port)).Build()).Error(); err != nil {
			t.Fatalf("cluster meet %s: %v", n.Addr(), err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for i, c := range clients {
		for {
			info, err := c.Do(ctx, c.B().ClusterInfo().Build()).ToString()
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_known_nodes:3") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cluster node %s not ok within 30s: %v\n%s\n%s", nodes[i].Addr(), err, info, nodes[i].Log())
			}
			<-tick.C
		}
	}
	return nodes
}

// adminClient is a client to the server alone, as the package's own user when there are ACL
// lines; closed when the test ends.
func (s *Server) adminClient() valkey.Client {
	s.t.Helper()
	opt := valkey.ClientOption{InitAddress: []string{s.Addr()}, DisableCache: true, ForceSingleClient: true}
	if len(s.opt.ACL) > 0 {
		opt.Username, opt.Password = adminUser, adminPassword
	}
	if s.opt.TLS {
		opt.TLSConfig = &tls.Config{RootCAs: s.CA.Pool(), MinVersion: tls.VersionTLS12, Certificates: s.ping}
	}
	c, err := valkey.NewClient(opt)
	if err != nil {
		s.t.Fatalf("valkey %s: %v", s.Addr(), err)
	}
	s.t.Cleanup(c.Close)
	return c
}

// AdminClient is a client to the server with every right (the package's own user when there
// are ACL lines, the server's CA with TLS), to set up and check what the code under test
// cannot; closed when the test ends.
func (s *Server) AdminClient() valkey.Client {
	s.t.Helper()
	return s.adminClient()
}
