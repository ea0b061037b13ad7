package localenv

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"sigs.k8s.io/yaml"
)

// The syncer runs as three processes, as it would on a host cluster: NATS
// (here kplex-syncer's embedded server, so nothing needs installing), the
// host relay, and one shard serving every virtual cluster.

func plainProbe(port string) func(context.Context) error {
	return httpProbe(func() (*http.Client, error) { return &http.Client{Timeout: 3 * time.Second}, nil }, "http://127.0.0.1:"+port+"/readyz", "ok")
}

func (e *env) natsURL() string { return "nats://127.0.0.1:" + e.port(PortNATS) }

func (e *env) natsComponent() component {
	return component{
		name:  "nats",
		ports: []string{PortNATS, PortNATSMetrics},
		command: func() (string, []string, []string, error) {
			return e.bin("kplex-syncer"), []string{
				"--mode=nats",
				"--nats-listen=127.0.0.1:" + e.port(PortNATS),
				"--nats-store-dir=" + e.layout.NATSDir(),
				"--metrics-address=127.0.0.1:" + e.port(PortNATSMetrics),
			}, nil, nil
		},
		ready:        plainProbe(e.port(PortNATSMetrics)),
		readyTimeout: 30 * time.Second,
	}
}

func (e *env) relayComponent() component {
	return component{
		name:  "syncer-relay",
		ports: []string{PortRelayMetrics},
		command: func() (string, []string, []string, error) {
			return e.bin("kplex-syncer"), []string{
				"--mode=relay",
				"--shard-name=relay-0",
				"--host-kubeconfig=" + e.layout.HostKubeconfig(),
				"--nats-url=" + e.natsURL(),
				"--metrics-address=127.0.0.1:" + e.port(PortRelayMetrics),
			}, nil, nil
		},
		ready:        plainProbe(e.port(PortRelayMetrics)),
		readyTimeout: 60 * time.Second,
	}
}

func (e *env) shardComponent() component {
	return component{
		name:    "syncer-shard-0",
		ports:   []string{PortShardMetrics},
		prepare: func(context.Context) error { return e.writeTenants() },
		command: func() (string, []string, []string, error) {
			args := []string{
				"--mode=shard",
				"--shard-name=shard-0",
				"--host-kubeconfig=" + e.layout.HostKubeconfig(),
				"--nats-url=" + e.natsURL(),
				"--tenants-file=" + e.layout.SyncerTenants(),
				"--tenants-file=" + e.layout.SyncerTenantsDir(), // the operator's registrations
				"--metrics-address=127.0.0.1:" + e.port(PortShardMetrics),
				"--patrol-interval=10s", // a short patrol: local clusters are small
				"--profiling",           // loopback only: go tool pprof http://127.0.0.1:<port>/debug/pprof/heap
			}
			if ns := e.opts.RegistryNamespace; ns != "" {
				args = append(args, "--tenants-secrets-namespace="+ns)
			}
			return e.bin("kplex-syncer"), args, nil, nil
		},
		ready:        plainProbe(e.port(PortShardMetrics)),
		readyTimeout: 60 * time.Second,
	}
}

// writeTenants registers every virtual cluster with the shard (the
// operator will do this; see syncer/internal/tenants for the format).
func (e *env) writeTenants() error {
	type tenant struct {
		Name       string `json:"name"`
		Kubeconfig string `json:"kubeconfig"`
	}
	var reg struct {
		Tenants []tenant `json:"tenants"`
	}
	for _, vc := range e.state.VClusters {
		kc, err := filepath.Abs(e.layout.VClusterComponentKubeconfig(vc, "syncer"))
		if err != nil {
			return err
		}
		reg.Tenants = append(reg.Tenants, tenant{Name: vc, Kubeconfig: kc})
	}
	b, err := yaml.Marshal(reg)
	if err != nil {
		return err
	}
	path := e.layout.SyncerTenants()
	if err := os.MkdirAll(e.layout.SyncerTenantsDir(), 0o755); err != nil {
		return fmt.Errorf("syncer tenants: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("syncer tenants: %w", err)
	}
	return os.Rename(tmp, path)
}
