// Package keyspace confines a tenant to its part of the shared keyspace.
//
// The contract: every key of tenant t is stored as Root + t + "/" + key, and
// every range a tenant asks for is translated into a range that lies
// entirely inside [Root+t+"/", end-of-prefix). No input (empty keys, "\x00"
// range ends, ends before starts, bytes above 0x7f) can produce a stored key
// or range outside that interval; FuzzRange proves it. Results coming back
// from a backend are checked again with Strip, so a backend whose ordering
// differs from byte order still cannot leak another tenant's key.
package keyspace

import (
	"fmt"
)

// Root is the prefix under which every tenant's keys live.
const Root = "/kplex/"

// Space is one tenant's part of the keyspace.
type Space struct {
	tenant string
	prefix string // Root + tenant + "/"
	end    string // first key after every key with prefix
}

// ValidTenant reports whether name can be a tenant: a DNS label (lowercase
// letters, digits, '-', not starting or ending with '-', 1..63 bytes).
func ValidTenant(name string) error {
	if len(name) == 0 || len(name) > 63 {
		return fmt.Errorf("tenant name %q: want 1..63 characters", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' && i > 0 && i < len(name)-1
		if !ok {
			return fmt.Errorf("tenant name %q: want a DNS label (lowercase letters, digits, inner '-')", name)
		}
	}
	return nil
}

// ForTenant returns the space of a tenant.
func ForTenant(tenant string) (Space, error) {
	if err := ValidTenant(tenant); err != nil {
		return Space{}, err
	}
	p := Root + tenant + "/"
	return Space{tenant: tenant, prefix: p, end: prefixEnd(p)}, nil
}

// Tenant is the tenant's name.
func (s Space) Tenant() string { return s.tenant }

// Prefix is the stored prefix of every key of the tenant.
func (s Space) Prefix() string { return s.prefix }

// Key is the stored form of a tenant key.
func (s Space) Key(k string) string { return s.prefix + k }

// Range translates a tenant range as the etcd API defines it into a stored
// range:
//   - end "" means the single key (returned end is "");
//   - end "\x00" means every key >= key;
//   - key "" with end "" (kine's spelling of "\x00".."\x00") means all keys.
//
// The returned [key, end) never leaves the tenant's space.
func (s Space) Range(key, end string) (string, string) {
	switch {
	case key == "" && end == "":
		return s.prefix, s.end
	case end == "":
		return s.prefix + key, ""
	case end == "\x00":
		return s.prefix + key, s.end
	default:
		return s.prefix + key, s.prefix + end
	}
}

// Contains reports whether a stored key belongs to the tenant.
func (s Space) Contains(stored string) bool {
	return len(stored) >= len(s.prefix) && stored[:len(s.prefix)] == s.prefix
}

// Strip returns the tenant key of a stored key, and false when the stored
// key is not the tenant's.
func (s Space) Strip(stored string) (string, bool) {
	if !s.Contains(stored) {
		return "", false
	}
	return stored[len(s.prefix):], true
}

// End is the first stored key after the tenant's space.
func (s Space) End() string { return s.end }

// prefixEnd is the smallest key greater than every key with prefix p (p
// ends in '/', so incrementing its last byte never overflows).
func prefixEnd(p string) string {
	b := []byte(p)
	b[len(b)-1]++
	return string(b)
}
