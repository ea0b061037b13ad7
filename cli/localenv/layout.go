// Package localenv runs kplex's local environment: a host cluster (etcd,
// kplex-apiserver, kplex-controller-manager, kplex-scheduler and simulated
// nodes) and virtual clusters on it, as processes on this machine, with
// every file under one directory (.kplex by default).
//
// The main flow is Up (up.go): load or create the state, then start each
// component in order, skipping those already running, waiting for each to be
// ready. Down (down.go) stops them in reverse order.
package localenv

import "path/filepath"

// Layout names every path under the environment's root directory.
type Layout struct{ Root string }

// HostDir holds the host cluster's files.
func (l Layout) HostDir() string { return filepath.Join(l.Root, "host") }

// HostPKI holds the host CA and certificates.
func (l Layout) HostPKI() string { return filepath.Join(l.Root, "host", "pki") }

// HostKubeconfig is the admin kubeconfig of the host cluster.
func (l Layout) HostKubeconfig() string { return filepath.Join(l.Root, "host", "kubeconfig") }

// HostComponentKubeconfig is the kubeconfig a host component uses.
func (l Layout) HostComponentKubeconfig(name string) string {
	return filepath.Join(l.Root, "host", name+".kubeconfig")
}

// EtcdData is the host etcd's data directory.
func (l Layout) EtcdData() string { return filepath.Join(l.Root, "host", "etcd") }

// VClusterDir holds one virtual cluster's files.
func (l Layout) VClusterDir(name string) string { return filepath.Join(l.Root, "vclusters", name) }

// VClusterPKI holds a virtual cluster's CA and certificates.
func (l Layout) VClusterPKI(name string) string { return filepath.Join(l.VClusterDir(name), "pki") }

// VClusterKubeconfig is a virtual cluster's admin kubeconfig.
func (l Layout) VClusterKubeconfig(name string) string {
	return filepath.Join(l.VClusterDir(name), "kubeconfig")
}

// VClusterComponentKubeconfig is the kubeconfig a tenant component uses.
func (l Layout) VClusterComponentKubeconfig(vc, component string) string {
	return filepath.Join(l.VClusterDir(vc), component+".kubeconfig")
}

// Log is a process's log file.
func (l Layout) Log(process string) string { return filepath.Join(l.Root, "logs", process+".log") }

// Pid is a process's pid file.
func (l Layout) Pid(process string) string { return filepath.Join(l.Root, "run", process+".pid") }

// State is the environment's persisted settings.
func (l Layout) State() string { return filepath.Join(l.Root, "state.json") }

// KWOKDir holds the simulated nodes' configuration.
func (l Layout) KWOKDir() string { return filepath.Join(l.Root, "host", "kwok") }

// DatastoreDir holds the datastore-proxy's embedded SQLite database.
func (l Layout) DatastoreDir() string { return filepath.Join(l.Root, "datastore") }

// NATSDir holds the embedded NATS server's JetStream data.
func (l Layout) NATSDir() string { return filepath.Join(l.Root, "nats") }

// SyncerTenants is the syncer shard's tenant registry.
func (l Layout) SyncerTenants() string { return filepath.Join(l.Root, "syncer", "tenants.yaml") }

// SyncerTenantsDir holds the operator's per-tenant syncer registrations.
func (l Layout) SyncerTenantsDir() string { return filepath.Join(l.Root, "syncer", "tenants.d") }

// DatastoreLimits is the datastore-proxy's per-tenant limits file, written
// by the operator.
func (l Layout) DatastoreLimits() string { return filepath.Join(l.Root, "datastore", "limits.yaml") }

// OperatorDir holds the operator's per-tenant files (process runtime).
func (l Layout) OperatorDir() string { return filepath.Join(l.Root, "operator") }

// RunDir holds pid files; LogDir holds logs.
func (l Layout) RunDir() string { return filepath.Join(l.Root, "run") }

// LogDir holds every process's log.
func (l Layout) LogDir() string { return filepath.Join(l.Root, "logs") }
