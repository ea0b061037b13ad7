package localenv

import (
	"context"
	"fmt"
	"os"
	"time"
)

// operatorComponent is kplex-operator with the process runtime: it runs
// each VirtualCluster's control plane as processes of this environment
// (pid files in run/, logs in logs/ as vc-<name>-<component>), writes the
// tenant's datastore limits and syncer registration, and keeps the tenant
// PKI in host Secrets.
func (e *env) operatorComponent() component {
	hostPKI := e.layout.HostPKI()
	return component{
		name:  "operator",
		ports: []string{PortOperatorMetrics, PortOperatorHealth},
		prepare: func(context.Context) error {
			if err := os.MkdirAll(e.layout.SyncerTenantsDir(), 0o755); err != nil {
				return fmt.Errorf("operator: %w", err)
			}
			return nil
		},
		command: func() (string, []string, []string, error) {
			args := []string{
				"--kubeconfig=" + e.layout.HostKubeconfig(),
				"--data-dir=" + e.layout.OperatorDir(),
				"--run-dir=" + e.layout.RunDir(),
				"--log-dir=" + e.layout.LogDir(),
				"--bin-dir=" + e.opts.BinDir,
				"--datastore-endpoints=https://127.0.0.1:" + e.port(PortDatastore),
				"--datastore-ca-cert=" + pkiFile(hostPKI, datastoreCA, "crt"),
				"--datastore-ca-key=" + pkiFile(hostPKI, datastoreCA, "key"),
				"--datastore-server-ca=" + pkiFile(hostPKI, hostCA, "crt"),
				"--nats-url=" + e.natsURL(),
				"--service-cidr=" + e.state.ServiceCIDR,
				"--metrics-address=127.0.0.1:" + e.port(PortOperatorMetrics),
				"--health-address=127.0.0.1:" + e.port(PortOperatorHealth),
			}
			if ns := e.opts.RegistryNamespace; ns != "" {
				args = append(args, "--syncer-registry-namespace="+ns, "--datastore-limits-configmap="+ns+"/kplex-datastore-limits")
			} else {
				args = append(args, "--datastore-limits-file="+e.layout.DatastoreLimits(), "--syncer-tenants-dir="+e.layout.SyncerTenantsDir())
			}
			if e.opts.DieWithParent {
				args = append(args, "--die-with-operator")
			}
			return e.bin("kplex-operator"), append(args, e.opts.OperatorArgs...), nil, nil
		},
		ready:        plainProbe(e.port(PortOperatorHealth)),
		readyTimeout: 60 * time.Second,
	}
}
