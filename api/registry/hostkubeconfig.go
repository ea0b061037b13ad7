package registry

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// CheckHostKubeconfig enforces what a private host cluster's kubeconfig
// (Tenant.HostKubeconfig) may hold. It comes from a VirtualCluster's
// creator, but the operator and the shards use it, so it must carry its
// credentials inline: no exec or auth-provider plugin (a command run by
// kplex), no token file and no certificate, key or CA file path (kplex's
// own files, sent to a server of the creator's choosing).
func CheckHostKubeconfig(b []byte) error {
	var cfg struct {
		Clusters []struct {
			Name    string         `json:"name"`
			Cluster map[string]any `json:"cluster"`
		} `json:"clusters"`
		Users []struct {
			Name string         `json:"name"`
			User map[string]any `json:"user"`
		} `json:"users"`
	}
	if err := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096).Decode(&cfg); err != nil {
		return fmt.Errorf("not a kubeconfig: %w", err)
	}
	var errs []error
	refuse := func(kind, name string, fields map[string]any, keys ...string) {
		var found []string
		for _, k := range keys {
			if v, ok := fields[k]; ok && v != nil && v != "" {
				found = append(found, k)
			}
		}
		if len(found) > 0 {
			sort.Strings(found)
			errs = append(errs, fmt.Errorf("%s %q: %s not allowed (credentials must be inline: *-data fields, token)", kind, name, strings.Join(found, ", ")))
		}
	}
	for _, c := range cfg.Clusters {
		refuse("cluster", c.Name, c.Cluster, "certificate-authority")
	}
	for _, u := range cfg.Users {
		refuse("user", u.Name, u.User, "exec", "auth-provider", "tokenFile", "client-certificate", "client-key")
	}
	return errors.Join(errs...)
}
