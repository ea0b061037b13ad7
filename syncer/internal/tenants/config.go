// Package tenants is the syncer's tenant registry: which virtual clusters a
// shard serves and how. Registries are files (written by hand or by
// `kplexctl up`) or directories of files (kplex-operator writes one per
// VirtualCluster), reloaded live.
//
//	tenants:
//	  - name: demo                        # tenant name (DNS label, <= 40)
//	    kubeconfig: /path/syncer.kubeconfig  # the syncer's identity in the tenant API
//	    podSecurity: baseline             # baseline (default) | restricted
//	    configMaps: Used                  # Used (default): those synced pods use | All
//	    secrets: Used                     # Used (default) | All
//	    apiServerEndpoint: 10.0.0.5:443   # what host pods reach the tenant API at
//	                                      # (default: the kubeconfig's server)
//	    realNodes: false                  # copy host node labels, taints, conditions
//	    ingressClasses: {public: nginx}   # virtual ingress class -> host class
//	    importStorageClasses: false       # read-only copies of the host's classes
//	    importIngressClasses: false
//	    nodeSelector: {pool: team-a}      # dedicated nodes: forced on every host pod
//	    tolerations: [{key: dedicated, operator: Equal, value: team-a, effect: NoSchedule}]
//	    resources: [persistentvolumeclaims, ingresses, networkpolicies, poddisruptionbudgets]
//	                                      # optional resources synced (absent: all; []: none)
//	    exportServices:                   # tenant Services reachable in host namespaces
//	      - {from: {namespace: default, name: web}, to: {namespace: shared, name: team-a-web}}
//	    importServices:                   # host Services resolvable in the tenant
//	      - {from: {namespace: db, name: postgres}, to: {namespace: default, name: postgres}}
//	    hostKubeconfig: /path/other.kubeconfig  # private nodes: the tenant's own host cluster
//
// Relative kubeconfig paths are resolved against the file's directory. A
// tenant whose kubeconfig files change (a rotated certificate) is
// restarted with them by the shard that serves it.
package tenants

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"

	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"kplex.dev/api/naming"
	"kplex.dev/api/registry"
)

// Tenant is one tenant's sync settings (the contract in api/registry).
type Tenant = registry.Tenant

// Sync modes of ConfigMaps and Secrets.
const (
	SyncUsed = registry.SyncUsed
	SyncAll  = registry.SyncAll
)

// Config is the whole file.
type Config = registry.File

var tenantName = regexp.MustCompile(`^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$`)

// Parse reads and validates a registry; dir resolves relative paths.
func Parse(b []byte, dir string) (*Config, error) {
	var c Config
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return nil, fmt.Errorf("tenants file: %w", err)
	}
	seen := map[string]bool{}
	for i := range c.Tenants {
		t := &c.Tenants[i]
		at := fmt.Sprintf("tenants[%d]", i)
		if !tenantName.MatchString(t.Name) {
			return nil, fmt.Errorf("tenants file: %s.name %q: want a DNS label of at most 40 characters starting with a letter", at, t.Name)
		}
		if seen[t.Name] {
			return nil, fmt.Errorf("tenants file: %s.name %q: listed twice", at, t.Name)
		}
		seen[t.Name] = true
		if t.Kubeconfig == "" {
			return nil, fmt.Errorf("tenants file: %s (%s).kubeconfig: required", at, t.Name)
		}
		if !filepath.IsAbs(t.Kubeconfig) {
			t.Kubeconfig = filepath.Join(dir, t.Kubeconfig)
		}
		if t.HostKubeconfig != "" && !filepath.IsAbs(t.HostKubeconfig) {
			t.HostKubeconfig = filepath.Join(dir, t.HostKubeconfig)
		}
		if err := defaultAndCheck(&t.PodSecurity, "baseline", at+".podSecurity", "baseline", "restricted"); err != nil {
			return nil, err
		}
		if err := defaultAndCheck(&t.ConfigMaps, SyncUsed, at+".configMaps", SyncUsed, SyncAll); err != nil {
			return nil, err
		}
		if err := defaultAndCheck(&t.Secrets, SyncUsed, at+".secrets", SyncUsed, SyncAll); err != nil {
			return nil, err
		}
		for k, v := range t.NodeSelector {
			if errs := validation.IsQualifiedName(k); len(errs) > 0 {
				return nil, fmt.Errorf("tenants file: %s.nodeSelector key %q: %s", at, k, errs[0])
			}
			if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
				return nil, fmt.Errorf("tenants file: %s.nodeSelector[%s] %q: %s", at, k, v, errs[0])
			}
		}
		if t.Resources != nil {
			for _, r := range *t.Resources {
				if !slices.Contains(registry.OptionalResources, r) {
					return nil, fmt.Errorf("tenants file: %s.resources: %q is not one of %v", at, r, registry.OptionalResources)
				}
			}
		}
		if err := checkExports(t.ExportServices, at); err != nil {
			return nil, err
		}
		if err := checkImports(t.ImportServices, at); err != nil {
			return nil, err
		}
		if t.APIServerEndpoint != "" {
			if _, _, err := SplitEndpoint(t.APIServerEndpoint); err != nil {
				return nil, fmt.Errorf("tenants file: %s.apiServerEndpoint: %w", at, err)
			}
		}
	}
	return &c, nil
}

// Load reads a registry file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tenants file: %w", err)
	}
	return Parse(b, filepath.Dir(path))
}

// LoadAll merges registries: each path is a file, or a directory whose
// *.yaml files are each a registry (the operator writes one per tenant).
// A file that does not load, or a tenant listed again, is skipped and
// reported in the error, so one bad registration never blocks the others;
// the Config holds everything that loaded. A missing path is an error.
func LoadAll(paths []string) (*Config, error) {
	var files []string
	var errs []error
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("tenants file: %w", err)
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		m, err := filepath.Glob(filepath.Join(p, "*.yaml"))
		if err != nil {
			return nil, fmt.Errorf("tenants directory %s: %w", p, err)
		}
		sort.Strings(m)
		files = append(files, m...)
	}
	out := &Config{}
	seen := map[string]string{}
	for _, f := range files {
		c, err := Load(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f, err))
			continue
		}
		for _, t := range c.Tenants {
			if prev, dup := seen[t.Name]; dup {
				errs = append(errs, fmt.Errorf("%s: tenant %q already registered by %s; ignored", f, t.Name, prev))
				continue
			}
			seen[t.Name] = f
			out.Tenants = append(out.Tenants, t)
		}
	}
	return out, errors.Join(errs...)
}

func defaultAndCheck(v *string, def, at string, allowed ...string) error {
	if *v == "" {
		*v = def
	}
	for _, a := range allowed {
		if *v == a {
			return nil
		}
	}
	return fmt.Errorf("tenants file: %s %q: want one of %v", at, *v, allowed)
}

// SplitEndpoint splits "host:port" or an https URL into host and port.
func SplitEndpoint(ep string) (string, int, error) {
	if u, err := url.Parse(ep); err == nil && u.Scheme != "" && u.Host != "" {
		ep = u.Host
		if u.Port() == "" {
			ep += ":443"
		}
	}
	h, p, err := net.SplitHostPort(ep)
	if err != nil {
		return "", 0, fmt.Errorf("%q: want host:port: %w", ep, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("%q: bad port", ep)
	}
	return h, port, nil
}

// checkExports validates service exports: DNS-label names, every target
// once, and never into a tenant's host namespace (kplex-*), which only that
// tenant's shard writes.
func checkExports(exports []registry.ServiceExport, at string) error {
	to := map[registry.ServiceRef]bool{}
	for i, e := range exports {
		at := fmt.Sprintf("%s.exportServices[%d]", at, i)
		if err := checkRefs(at, e.From, e.To); err != nil {
			return err
		}
		if _, ok := naming.TenantOfHostNamespace(e.To.Namespace); ok {
			return fmt.Errorf("tenants file: %s.to.namespace %q: a tenant's host namespace cannot receive exports", at, e.To.Namespace)
		}
		if to[e.To] {
			return fmt.Errorf("tenants file: %s.to %s/%s: exported twice", at, e.To.Namespace, e.To.Name)
		}
		to[e.To] = true
	}
	return nil
}

// checkImports validates service imports: DNS-label names and every tenant
// Service imported once.
func checkImports(imports []registry.ServiceImport, at string) error {
	to := map[registry.ServiceRef]bool{}
	for i, im := range imports {
		at := fmt.Sprintf("%s.importServices[%d]", at, i)
		if err := checkRefs(at, im.From, im.To); err != nil {
			return err
		}
		if to[im.To] {
			return fmt.Errorf("tenants file: %s.to %s/%s: imported twice", at, im.To.Namespace, im.To.Name)
		}
		to[im.To] = true
	}
	return nil
}

// checkRefs checks that both ends of a mapping name a Service.
func checkRefs(at string, from, to registry.ServiceRef) error {
	for _, f := range []struct{ field, v string }{
		{"from.namespace", from.Namespace}, {"from.name", from.Name}, {"to.namespace", to.Namespace}, {"to.name", to.Name},
	} {
		if errs := validation.IsDNS1123Label(f.v); len(errs) > 0 {
			return fmt.Errorf("tenants file: %s.%s %q: %s", at, f.field, f.v, errs[0])
		}
	}
	return nil
}
