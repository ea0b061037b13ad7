// Package embedetcd runs a real single-member etcd in-process on free
// loopback ports, for tests and benchmarks of the etcd backend.
package embedetcd

import (
	"fmt"
	"net/url"
	"strconv"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"

	"kplex.dev/cli/ports"
)

// Start runs etcd with its data in dir. With tls nil the client URL is
// plain http; otherwise https with tls as the client-facing TLS (set
// ClientCertAuth to require client certificates). It returns the client
// URL and a stop function.
func Start(dir string, tls *transport.TLSInfo) (string, func(), error) {
	p, err := ports.Free(2)
	if err != nil {
		return "", nil, err
	}
	return StartOn(dir, tls, p[0], p[1])
}

// StartSeparateHTTP is Start with etcd's HTTP endpoints (/health, /metrics,
// the JSON gateway) on a client URL of their own
// (--listen-client-http-urls), so that its TLS client URL serves gRPC on
// grpc-go's own transport. On the one URL of Start, a TLS etcd serves gRPC
// through Go's net/http HTTP/2 server, as it does by default (and under
// kubeadm), which costs it more CPU a request.
func StartSeparateHTTP(dir string, tls *transport.TLSInfo) (string, func(), error) {
	p, err := ports.Free(3)
	if err != nil {
		return "", nil, err
	}
	return start(dir, tls, p[0], p[1], p[2])
}

// StartOn is Start on the given client and peer ports (to restart a member
// where its clients expect it).
func StartOn(dir string, tls *transport.TLSInfo, clientPort, peerPort int) (string, func(), error) {
	return start(dir, tls, clientPort, peerPort, 0)
}

// start runs etcd; httpPort, if not 0, is its client HTTP URL's.
func start(dir string, tls *transport.TLSInfo, clientPort, peerPort, httpPort int) (string, func(), error) {
	p := []int{clientPort, peerPort}
	cfg := embed.NewConfig()
	cfg.Dir = dir
	cfg.LogLevel = "error"
	client := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(p[0])}
	if tls != nil {
		client.Scheme = "https"
		cfg.ClientTLSInfo = *tls
	}
	peer := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(p[1])}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	if httpPort != 0 {
		h := client
		h.Host = "127.0.0.1:" + strconv.Itoa(httpPort)
		cfg.ListenClientHttpUrls = []url.URL{h}
	}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.Name + "=" + peer.String()
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return "", nil, fmt.Errorf("start etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		e.Close()
		return "", nil, fmt.Errorf("etcd not ready after 60s")
	}
	return client.String(), e.Close, nil
}
