package runtime

import (
	apiservertenant "kplex.dev/apiserver/tenant"
	cmtenant "kplex.dev/controller-manager/tenant"
	"kplex.dev/operator/internal/tenantpki"
)

// Files the runtimes put beside the PKI Secret's keys.
const (
	DatastoreCAFile          = "datastore-ca.crt"
	ControllerKubeconfigFile = tenantpki.ControllerMgr + ".kubeconfig"
	SchedulerKubeconfigFile  = tenantpki.Scheduler + ".kubeconfig"
)

// APIServerConfig is the tenant apiserver's configuration, wherever it
// runs: file names where a PKI Secret key (or DatastoreCAFile) is found.
// The caller sets the address and port.
func APIServerConfig(t Tenant, file func(key string) string, datastore []string) apiservertenant.Config {
	return apiservertenant.Config{
		Name:                         t.Name,
		EtcdServers:                  datastore,
		EtcdCAFile:                   file(DatastoreCAFile),
		EtcdCertFile:                 file(tenantpki.Datastore + ".crt"),
		EtcdKeyFile:                  file(tenantpki.Datastore + ".key"),
		TLSCertFile:                  file(tenantpki.APIServer + ".crt"),
		TLSKeyFile:                   file(tenantpki.APIServer + ".key"),
		ClientCAFile:                 file(tenantpki.CA + ".crt"),
		FrontProxyCAFile:             file(tenantpki.FrontProxyCA + ".crt"),
		FrontProxyClientCertFile:     file(tenantpki.FrontProxyClient + ".crt"),
		FrontProxyClientKeyFile:      file(tenantpki.FrontProxyClient + ".key"),
		ServiceAccountSigningKeyFile: file(tenantpki.SAKey),
		ServiceAccountKeyFile:        file(tenantpki.SAPub),
		ServiceClusterIPRange:        t.ServiceCIDR,
	}
}

// ControllerManagerConfig is the tenant controller manager's
// configuration; file as for APIServerConfig (and
// ControllerKubeconfigFile). The caller sets the address and port.
func ControllerManagerConfig(t Tenant, file func(key string) string) cmtenant.Config {
	return cmtenant.Config{
		Name:                         t.Name,
		Kubeconfig:                   file(ControllerKubeconfigFile),
		RootCAFile:                   file(tenantpki.CA + ".crt"),
		ServiceAccountPrivateKeyFile: file(tenantpki.SAKey),
		ClusterSigningCertFile:       file(tenantpki.CA + ".crt"),
		ClusterSigningKeyFile:        file(tenantpki.CA + ".key"),
		TLSCertFile:                  file(tenantpki.ControllerServe + ".crt"),
		TLSKeyFile:                   file(tenantpki.ControllerServe + ".key"),
		LeaderElect:                  t.ControllerManager.ReplicasOr1() > 1,
	}
}
