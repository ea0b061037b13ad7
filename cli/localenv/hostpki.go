package localenv

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"

	"kplex.dev/cli/kubeconfig"
	"kplex.dev/cli/pki"
)

// Host certificate names under host/pki.
const (
	hostCA           = "ca"
	certEtcdServer   = "etcd-server"
	certEtcdClient   = "apiserver-etcd-client"
	certAPIServer    = "apiserver"
	certAdmin        = "admin"
	serviceAccountKP = "sa"
	frontProxyCA     = "front-proxy-ca"
	frontProxyClient = "front-proxy-client"
)

// ensureFrontProxy creates the aggregation layer's CA and the apiserver's
// proxy client certificate in dir.
func ensureFrontProxy(dir, cluster string) error {
	ca, err := pki.LoadOrCreateCA(dir, frontProxyCA, cluster+"-front-proxy-ca")
	if err != nil {
		return fmt.Errorf("%s front-proxy CA: %w", cluster, err)
	}
	if _, _, err := ca.EnsureKeyPair(dir, frontProxyClient, pki.CertSpec{CommonName: "front-proxy-client", Client: true}); err != nil {
		return fmt.Errorf("%s front-proxy client certificate: %w", cluster, err)
	}
	return nil
}

func loopbackServer(cn string) pki.CertSpec {
	return pki.CertSpec{CommonName: cn, Server: true, DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}}
}

// clientIdentity is a client certificate and the kubeconfig built on it.
type clientIdentity struct {
	file       string // cert/key base name
	cn         string
	groups     []string
	kubeconfig string // path
}

// hostClients are the host cluster's client identities.
func (e *env) hostClients() []clientIdentity {
	l := e.layout
	return []clientIdentity{
		{file: certAdmin, cn: "kplex-admin", groups: []string{"system:masters"}, kubeconfig: l.HostKubeconfig()},
		{file: "controller-manager", cn: "system:kube-controller-manager", kubeconfig: l.HostComponentKubeconfig("controller-manager")},
		{file: "scheduler", cn: "system:kube-scheduler", kubeconfig: l.HostComponentKubeconfig("scheduler")},
		// The node simulator acts for every node and pod: it gets admin.
		{file: "kwok", cn: "kwok", groups: []string{"system:masters"}, kubeconfig: l.HostComponentKubeconfig("kwok")},
	}
}

// prepareHostPKI creates the host CA and every host certificate and
// kubeconfig, keeping valid existing ones.
func (e *env) prepareHostPKI() error {
	dir := e.layout.HostPKI()
	ca, err := pki.LoadOrCreateCA(dir, hostCA, "kplex-host-ca")
	if err != nil {
		return fmt.Errorf("host CA: %w", err)
	}
	dns, ips, err := pki.APIServerSANs(e.state.ServiceCIDR)
	if err != nil {
		return err
	}
	specs := map[string]pki.CertSpec{
		certEtcdServer:             loopbackServer("kplex-etcd"),
		certEtcdClient:             {CommonName: "kube-apiserver-etcd-client", Client: true},
		certAPIServer:              {CommonName: "kube-apiserver", Server: true, DNSNames: dns, IPs: ips},
		"controller-manager-serve": loopbackServer("kube-controller-manager"),
		"scheduler-serve":          loopbackServer("kube-scheduler"),
	}
	for name, spec := range specs {
		if _, _, err := ca.EnsureKeyPair(dir, name, spec); err != nil {
			return fmt.Errorf("host certificate %s: %w", name, err)
		}
	}
	if err := pki.EnsureServiceAccountKey(dir, serviceAccountKP); err != nil {
		return fmt.Errorf("host service-account key: %w", err)
	}
	if err := ensureFrontProxy(dir, "kplex-host"); err != nil {
		return err
	}
	server := "https://127.0.0.1:" + strconv.Itoa(e.state.Ports[PortHostAPIServer])
	return writeClients(ca, dir, "kplex-host", server, e.hostClients())
}

// writeClients issues each identity's client certificate and writes its
// kubeconfig for server.
func writeClients(ca *pki.CA, dir, cluster, server string, ids []clientIdentity) error {
	for _, id := range ids {
		kp, _, err := ca.EnsureKeyPair(dir, id.file, pki.CertSpec{CommonName: id.cn, Organization: id.groups, Client: true})
		if err != nil {
			return fmt.Errorf("client certificate %s: %w", id.file, err)
		}
		key, err := kp.KeyPEM()
		if err != nil {
			return err
		}
		if err := kubeconfig.Write(id.kubeconfig, kubeconfig.Config{
			Name: cluster, Server: server, CAPEM: ca.CertPEM(), CertPEM: kp.CertPEM(), KeyPEM: key,
		}); err != nil {
			return err
		}
	}
	return nil
}

func pkiFile(dir, name, ext string) string { return filepath.Join(dir, name+"."+ext) }
