package server

import "go.etcd.io/etcd/api/v3/etcdserverpb"

// Watch serves a tenant's watch stream: events of its own keys only.
func (s *Server) Watch(ws etcdserverpb.Watch_WatchServer) error {
	b, err := s.bridge(ws.Context())
	if err != nil {
		return err
	}
	return b.Watch(ws)
}
