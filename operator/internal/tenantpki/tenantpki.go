// Package tenantpki is a tenant's PKI kept as PEM in one host Secret: the
// tenant CA, the API server's serving certificate with every SAN the
// endpoint needs, the front-proxy pair, the service-account key pair, the
// client certificates of the admin, controller manager, scheduler and
// syncer, and the datastore client certificate (CN = tenant, signed by the
// datastore CA: the proxy's identity rule).
//
// Ensure is idempotent: what is present and still right is kept, what is
// missing, wrong or within 30 days of expiry is (re)issued, so calling it
// on every reconcile both creates and rotates.
package tenantpki

import (
	"fmt"
	"net"

	"kplex.dev/cli/pki"
)

// Secret keys of the PKI Secret. A pair NAME is stored as NAME.crt and
// NAME.key.
const (
	CA               = "ca"
	APIServer        = "apiserver"
	ControllerServe  = "controller-manager-serve"
	FrontProxyCA     = "front-proxy-ca"
	FrontProxyClient = "front-proxy-client"
	Admin            = "admin"
	ControllerMgr    = "controller-manager"
	Scheduler        = "scheduler"
	Syncer           = "syncer"
	Datastore        = "datastore-client"
	SAKey            = "sa.key"
	SAPub            = "sa.pub"
)

// Inputs are what the certificates depend on.
type Inputs struct {
	Tenant string
	// ServiceCIDR is the tenant's Service range: its first IP is the
	// in-cluster "kubernetes" Service, a SAN of the serving certificate.
	ServiceCIDR string
	// EndpointHosts are the names and IPs clients reach the API server at
	// (besides loopback and the in-cluster names).
	EndpointHosts []string
	// DatastoreCA signs the datastore client certificate.
	DatastoreCA *pki.CA
}

// Clients are the client identities and their groups.
var Clients = []struct {
	Name, CN string
	Groups   []string
}{
	{Admin, "kplex-admin", []string{"system:masters"}},
	{ControllerMgr, "system:kube-controller-manager", nil},
	{Scheduler, "system:kube-scheduler", nil},
	// The syncer acts for the tenant's kubelets and node controller.
	{Syncer, "kplex-syncer", []string{"system:masters"}},
}

// Ensure brings data (the Secret's data; nil for a new one) to a complete,
// valid PKI. It returns the new data and whether anything changed.
func Ensure(data map[string][]byte, in Inputs) (map[string][]byte, bool, error) {
	out := make(map[string][]byte, 32)
	for k, v := range data {
		out[k] = v
	}
	changed := false
	ensureCA := func(name, cn string) (*pki.CA, error) {
		if ca, err := pki.ParseCA(out[name+".crt"], out[name+".key"]); err == nil {
			return ca, nil
		} else if len(out[name+".crt"]) > 0 {
			// A CA that exists but does not parse is never silently
			// replaced: every issued credential hangs on it.
			return nil, fmt.Errorf("tenant %s: %s in the PKI Secret: %w (delete the Secret's %s.* keys to start a new CA)", in.Tenant, name, err, name)
		}
		ca, err := pki.NewCA(cn)
		if err != nil {
			return nil, err
		}
		key, err := ca.KeyPEM()
		if err != nil {
			return nil, err
		}
		out[name+".crt"], out[name+".key"] = ca.CertPEM(), key
		changed = true
		return ca, nil
	}
	ensureLeaf := func(ca *pki.CA, name string, spec pki.CertSpec) error {
		kp, issued, err := ca.EnsurePEM(out[name+".crt"], out[name+".key"], spec)
		if err != nil {
			return fmt.Errorf("tenant %s: %s: %w", in.Tenant, name, err)
		}
		if issued {
			key, err := kp.KeyPEM()
			if err != nil {
				return err
			}
			out[name+".crt"], out[name+".key"] = kp.CertPEM(), key
			changed = true
		}
		return nil
	}

	ca, err := ensureCA(CA, "kplex-"+in.Tenant+"-ca")
	if err != nil {
		return nil, false, err
	}
	serving, err := servingSpec(in)
	if err != nil {
		return nil, false, err
	}
	loop := pki.CertSpec{CommonName: "kube-controller-manager", Server: true, DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}
	steps := []struct {
		name string
		spec pki.CertSpec
	}{{APIServer, serving}, {ControllerServe, loop}}
	for _, c := range Clients {
		steps = append(steps, struct {
			name string
			spec pki.CertSpec
		}{c.Name, pki.CertSpec{CommonName: c.CN, Organization: c.Groups, Client: true}})
	}
	for _, s := range steps {
		if err := ensureLeaf(ca, s.name, s.spec); err != nil {
			return nil, false, err
		}
	}
	fp, err := ensureCA(FrontProxyCA, "kplex-"+in.Tenant+"-front-proxy-ca")
	if err != nil {
		return nil, false, err
	}
	if err := ensureLeaf(fp, FrontProxyClient, pki.CertSpec{CommonName: "front-proxy-client", Client: true}); err != nil {
		return nil, false, err
	}
	if in.DatastoreCA == nil {
		return nil, false, fmt.Errorf("tenant %s: no datastore CA", in.Tenant)
	}
	if err := ensureLeaf(in.DatastoreCA, Datastore, pki.CertSpec{CommonName: in.Tenant, Client: true}); err != nil {
		return nil, false, err
	}
	if pki.CheckServiceAccountKeyPEM(out[SAKey], out[SAPub]) != nil {
		if len(out[SAKey]) > 0 {
			// Replacing the pair invalidates every token issued; only a
			// broken pair is replaced, never a working one.
			changed = true
		}
		k, p, err := pki.NewServiceAccountKeyPEM()
		if err != nil {
			return nil, false, err
		}
		out[SAKey], out[SAPub] = k, p
		changed = true
	}
	return out, changed, nil
}

// servingSpec is the API server's certificate: loopback, the in-cluster
// names and Service IP, and every endpoint host.
func servingSpec(in Inputs) (pki.CertSpec, error) {
	dns, ips, err := pki.APIServerSANs(in.ServiceCIDR)
	if err != nil {
		return pki.CertSpec{}, fmt.Errorf("tenant %s: %w", in.Tenant, err)
	}
	for _, h := range in.EndpointHosts {
		if ip := net.ParseIP(h); ip != nil {
			if !ip.Equal(ips[0]) && !ip.Equal(ips[1]) {
				ips = append(ips, ip)
			}
		} else if h != "" && h != "localhost" {
			dns = append(dns, h)
		}
	}
	return pki.CertSpec{CommonName: "kube-apiserver", Server: true, DNSNames: dns, IPs: ips}, nil
}
