package localenv

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	apiservertenant "kplex.dev/apiserver/tenant"
	"kplex.dev/cli/pki"
	cmtenant "kplex.dev/controller-manager/tenant"
)

// Tenant certificate names under vclusters/<name>/pki.
const (
	tenantCA        = "ca"
	certTenantServe = "apiserver"
	// certDatastore is the tenant's client certificate for the
	// datastore-proxy, signed by the datastore CA with CN = tenant: the
	// proxy's identity rule.
	certDatastore = "datastore-client"
)

// vclusterComponents are a virtual cluster's apiserver and controller
// manager.
func (e *env) vclusterComponents(vc string) []component {
	dir := e.layout.VClusterPKI(vc)
	apiPort := e.port(vc + "-apiserver")
	cmPort := e.port(vc + "-controller-manager")
	crt := func(n string) string { return pkiFile(dir, n, "crt") }
	key := func(n string) string { return pkiFile(dir, n, "key") }
	admin := func() (*http.Client, error) { return tlsClient(crt(tenantCA), crt("admin"), key("admin")) }
	anon := func() (*http.Client, error) { return tlsClient(crt(tenantCA), "", "") }

	return []component{
		{
			name:    vc + "-apiserver",
			ports:   []string{vc + "-apiserver"},
			prepare: func(context.Context) error { return e.prepareTenantPKI(vc) },
			command: func() (string, []string, []string, error) {
				hostPKI := e.layout.HostPKI()
				args, err := apiservertenant.Flags(apiservertenant.Config{
					Name:                         vc,
					SecurePort:                   e.state.Ports[vc+"-apiserver"],
					EtcdServers:                  []string{"https://127.0.0.1:" + e.port(PortDatastore)},
					EtcdCAFile:                   pkiFile(hostPKI, hostCA, "crt"),
					EtcdCertFile:                 crt(certDatastore),
					EtcdKeyFile:                  key(certDatastore),
					TLSCertFile:                  crt(certTenantServe),
					TLSKeyFile:                   key(certTenantServe),
					ClientCAFile:                 crt(tenantCA),
					FrontProxyCAFile:             crt(frontProxyCA),
					FrontProxyClientCertFile:     crt(frontProxyClient),
					FrontProxyClientKeyFile:      key(frontProxyClient),
					ServiceAccountSigningKeyFile: pkiFile(dir, serviceAccountKP, "key"),
					ServiceAccountKeyFile:        pkiFile(dir, serviceAccountKP, "pub"),
					ServiceClusterIPRange:        e.state.ServiceCIDR,
				})
				return e.bin("kplex-apiserver"), args, apiservertenant.ProcessEnv, err
			},
			ready:        httpProbe(admin, "https://127.0.0.1:"+apiPort+"/readyz", "ok"),
			readyTimeout: 120 * time.Second,
		},
		{
			name:  vc + "-controller-manager",
			ports: []string{vc + "-controller-manager"},
			command: func() (string, []string, []string, error) {
				args, err := cmtenant.Flags(cmtenant.Config{
					Name:                         vc,
					Kubeconfig:                   e.layout.VClusterComponentKubeconfig(vc, "controller-manager"),
					SecurePort:                   e.state.Ports[vc+"-controller-manager"],
					RootCAFile:                   crt(tenantCA),
					ServiceAccountPrivateKeyFile: pkiFile(dir, serviceAccountKP, "key"),
					ClusterSigningCertFile:       crt(tenantCA),
					ClusterSigningKeyFile:        key(tenantCA),
					TLSCertFile:                  crt("controller-manager-serve"),
					TLSKeyFile:                   key("controller-manager-serve"),
				})
				if err != nil {
					return "", nil, nil, err
				}
				return e.bin("kplex-controller-manager"), args, cmtenant.ProcessEnv, nil
			},
			ready: allOf(
				httpProbe(anon, "https://127.0.0.1:"+cmPort+"/healthz", "ok"),
				defaultServiceAccountProbe(e.layout.VClusterKubeconfig(vc)),
			),
			readyTimeout: 60 * time.Second,
		},
	}
}

// prepareTenantPKI creates the tenant CA, serving and client certificates,
// service-account key pair, datastore client certificate and kubeconfigs.
func (e *env) prepareTenantPKI(vc string) error {
	dir := e.layout.VClusterPKI(vc)
	ca, err := pki.LoadOrCreateCA(dir, tenantCA, "kplex-"+vc+"-ca")
	if err != nil {
		return fmt.Errorf("virtual cluster %s CA: %w", vc, err)
	}
	dns, ips, err := pki.APIServerSANs(e.state.ServiceCIDR)
	if err != nil {
		return err
	}
	if _, _, err := ca.EnsureKeyPair(dir, certTenantServe, pki.CertSpec{CommonName: "kube-apiserver", Server: true, DNSNames: dns, IPs: ips}); err != nil {
		return fmt.Errorf("virtual cluster %s serving certificate: %w", vc, err)
	}
	if _, _, err := ca.EnsureKeyPair(dir, "controller-manager-serve", loopbackServer("kube-controller-manager")); err != nil {
		return fmt.Errorf("virtual cluster %s controller-manager serving certificate: %w", vc, err)
	}
	if err := pki.EnsureServiceAccountKey(dir, serviceAccountKP); err != nil {
		return fmt.Errorf("virtual cluster %s service-account key: %w", vc, err)
	}
	if err := ensureFrontProxy(dir, "kplex-"+vc); err != nil {
		return err
	}
	dsCA, err := pki.LoadCA(e.layout.HostPKI(), datastoreCA)
	if err != nil {
		return fmt.Errorf("datastore CA: %w", err)
	}
	if _, _, err := dsCA.EnsureKeyPair(dir, certDatastore, pki.CertSpec{CommonName: vc, Client: true}); err != nil {
		return fmt.Errorf("virtual cluster %s datastore certificate: %w", vc, err)
	}
	server := "https://127.0.0.1:" + strconv.Itoa(e.state.Ports[vc+"-apiserver"])
	return writeClients(ca, dir, "kplex-"+vc, server, []clientIdentity{
		{file: "admin", cn: "kplex-admin", groups: []string{"system:masters"}, kubeconfig: e.layout.VClusterKubeconfig(vc)},
		{file: "controller-manager", cn: "system:kube-controller-manager", kubeconfig: e.layout.VClusterComponentKubeconfig(vc, "controller-manager")},
		// The syncer acts for the tenant's kubelets and node controller.
		{file: "syncer", cn: "kplex-syncer", groups: []string{"system:masters"}, kubeconfig: e.layout.VClusterComponentKubeconfig(vc, "syncer")},
	})
}
