// Package tenantconfig is the proxy's per-tenant limits file and its live
// reload.
//
// The file (YAML or JSON) sets defaults and per-tenant overrides:
//
//	defaults:
//	  maxKeys: 100000          # keys a tenant may store; 0 = unlimited
//	  maxBytes: 1073741824     # bytes of keys and values a tenant may store
//	  requestsPerSecond: 500   # sustained etcd requests per second
//	  burst: 1000              # requests above the rate allowed in a burst
//	tenants:
//	  demo:
//	    maxKeys: 20000
//
// A tenant's field left at 0 takes the default; a default of 0 means no
// limit. The operator writes this file; the proxy reloads it when it
// changes, keeping the last good version when a new one does not parse.
package tenantconfig

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"

	"sigs.k8s.io/yaml"

	"kplex.dev/datastore-proxy/keyspace"
)

// Limits are one tenant's quotas.
type Limits struct {
	MaxKeys           int64   `json:"maxKeys,omitempty"`
	MaxBytes          int64   `json:"maxBytes,omitempty"`
	RequestsPerSecond float64 `json:"requestsPerSecond,omitempty"`
	Burst             int     `json:"burst,omitempty"`
	// MaxWatches bounds the watches a tenant has open at once, over all
	// its streams: each costs the shared proxy goroutines, a watch on the
	// store, and on etcd up to its backlog of events for a slow client.
	MaxWatches int64 `json:"maxWatches,omitempty"`
}

// Config is the whole file.
type Config struct {
	Defaults Limits            `json:"defaults"`
	Tenants  map[string]Limits `json:"tenants"`
}

// For returns a tenant's effective limits.
func (c *Config) For(tenant string) Limits {
	if c == nil {
		return Limits{}
	}
	l, d := c.Tenants[tenant], c.Defaults
	if l.MaxKeys == 0 {
		l.MaxKeys = d.MaxKeys
	}
	if l.MaxBytes == 0 {
		l.MaxBytes = d.MaxBytes
	}
	if l.RequestsPerSecond == 0 {
		l.RequestsPerSecond = d.RequestsPerSecond
	}
	if l.Burst == 0 {
		l.Burst = d.Burst
	}
	if l.MaxWatches == 0 {
		l.MaxWatches = d.MaxWatches
	}
	return l
}

// Parse reads and validates a config.
// An empty file is refused: it is more often one being written than one
// meant to lift every limit ("{}" says that).
func Parse(b []byte) (*Config, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, errors.New(`tenant config: the file is empty (write "{}" for no limits)`)
	}
	var c Config
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return nil, fmt.Errorf("tenant config: %w", err)
	}
	if err := c.Defaults.validate("defaults"); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(c.Tenants))
	for n := range c.Tenants {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := keyspace.ValidTenant(n); err != nil {
			return nil, fmt.Errorf("tenant config: tenants.%s: %w", n, err)
		}
		if err := c.Tenants[n].validate("tenants." + n); err != nil {
			return nil, err
		}
	}
	return &c, nil
}

// Load reads a config file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tenant config: %w", err)
	}
	return Parse(b)
}

// MaxRequestsPerSecond is the highest request rate a tenant may be given;
// 0 sets none.
const MaxRequestsPerSecond = 1e9

func (l Limits) validate(at string) error {
	switch {
	case l.MaxKeys < 0:
		return fmt.Errorf("tenant config: %s.maxKeys %d: must not be negative", at, l.MaxKeys)
	case l.MaxBytes < 0:
		return fmt.Errorf("tenant config: %s.maxBytes %d: must not be negative", at, l.MaxBytes)
	case l.RequestsPerSecond < 0:
		return fmt.Errorf("tenant config: %s.requestsPerSecond %g: must not be negative", at, l.RequestsPerSecond)
	case l.RequestsPerSecond > MaxRequestsPerSecond, math.IsNaN(l.RequestsPerSecond):
		// Its default burst, a second's worth, must fit an int.
		return fmt.Errorf("tenant config: %s.requestsPerSecond %g: at most %g (0: no limit)", at, l.RequestsPerSecond, float64(MaxRequestsPerSecond))
	case l.Burst < 0:
		return fmt.Errorf("tenant config: %s.burst %d: must not be negative", at, l.Burst)
	case l.MaxWatches < 0:
		return fmt.Errorf("tenant config: %s.maxWatches %d: must not be negative", at, l.MaxWatches)
	}
	return nil
}
