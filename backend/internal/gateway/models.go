package gateway

import "context"

// ModelsChanged tells every connection what its plan's models are now, with a new hello: call
// it when a model's state changes (a local model finished loading). It never waits for a
// client.
func (s *Server) ModelsChanged(ctx context.Context) {
	s.mu.Lock()
	list := make([]*session, 0, len(s.sessions))
	for sess := range s.sessions {
		list = append(list, sess)
	}
	s.mu.Unlock()
	for _, sess := range list {
		if ctx.Err() != nil {
			return
		}
		sess.tryHello(s.inUse(ctx, sess.user), "models changed")
	}
	s.log.Info("models changed", "connections", len(list))
}
