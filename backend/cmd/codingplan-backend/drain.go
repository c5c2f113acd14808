package main

import (
	"context"
	"net/http"
	"sync"
)

// drain shuts the node down gracefully once serve's context ends: the listener closes at once,
// streams in progress get until the drain timeout to finish, then the node's leases are
// released and the local models stop loading. serveErr is where srv.Serve returns.
func (n *node) drain(srv *http.Server, serveErr <-chan error) {
	log := n.log
	log.Info("draining", "timeout", n.cfg.DrainTimeout.String())
	dctx, cancel := context.WithTimeout(context.Background(), n.cfg.DrainTimeout)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		// Closes the listener at once; waits for plain HTTP requests in progress.
		if err := srv.Shutdown(dctx); err != nil {
			log.Warn("http shutdown", "err", err)
		}
	})
	wg.Go(func() {
		if err := n.gw.Shutdown(dctx); err != nil {
			log.Warn("drain deadline passed; remaining streams were cancelled", "err", err)
		}
	})
	wg.Wait()
	<-serveErr // http.ErrServerClosed
	n.closePool()
	n.stopLocal()
	n.local.Wait()
	log.Info("stopped")
}

// abort stops the node's streams after the HTTP server failed: they get until the drain
// timeout, then the node's leases are released.
func (n *node) abort() {
	sctx, scancel := context.WithTimeout(context.Background(), n.cfg.DrainTimeout)
	_ = n.gw.Shutdown(sctx)
	scancel()
	n.closePool()
}
