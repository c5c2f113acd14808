package gateway

import "context"

// ModelsChanged tells every connection what its plan's models are now, with a new hello: call
// it when a model's state changes (a local model finished loading). It never waits for a
// client.
func (s *Server) ModelsChanged(ctx context.Context) {
	s.mu.Lock()
	list := s.sessionsLocked()
	s.mu.Unlock()
	for _, sess := range list {
		if ctx.Err() != nil {
			return
		}
		sess.tryHello(s.inUse(ctx, sess.user), "models changed")
	}
	s.log.Info("models changed", "connections", len(list))
}

// sessionsLocked lists the open sessions, to act on after s.mu is released.
func (s *Server) sessionsLocked() []*session {
	list := make([]*session, 0, len(s.sessions))
	for sess := range s.sessions {
		list = append(list, sess)
	}
	return list
}
