// Package natsbus connects kplex to the host event bus: a NATS JetStream
// stream holding the last value of every host subject (api/bus). It also
// runs an in-process NATS server for local mode, so a fresh machine needs
// nothing installed.
package natsbus

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ServerConfig is an embedded NATS server.
type ServerConfig struct {
	// Listen is host:port to serve clients on; empty serves only this
	// process (in-process connections).
	Listen string
	// StoreDir keeps JetStream data across restarts; empty keeps it in a
	// temporary directory of the server's choosing.
	StoreDir string
}

// RunServer starts an embedded NATS server with JetStream and waits until
// it accepts connections.
func RunServer(cfg ServerConfig) (*server.Server, error) {
	opts := &server.Options{
		ServerName: "kplex-embedded",
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		NoSigs:     true,
		NoLog:      true,
	}
	if cfg.Listen == "" {
		opts.DontListen = true
	} else {
		host, port, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("nats listen address %q: %w", cfg.Listen, err)
		}
		opts.Host = host
		if opts.Port, err = strconv.Atoi(port); err != nil {
			return nil, fmt.Errorf("nats listen address %q: bad port", cfg.Listen)
		}
		if opts.Port == 0 {
			opts.Port = server.RANDOM_PORT // nats-server reads 0 as its default, 4222
		}
		opts.HTTPPort = 0
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded nats server: not ready after 30s (listen %q, store %q)", cfg.Listen, cfg.StoreDir)
	}
	return s, nil
}
