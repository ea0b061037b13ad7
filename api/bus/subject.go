// Package bus is the contract of the host event bus: the NATS JetStream
// subjects the host relay publishes host changes on and the message they
// carry.
//
// Subjects are kplex.host.<tenant>.<resource>.<namespace>.<name>, kept as
// last value per subject, so replaying a tenant's subjects gives its
// current host state. Each token is escaped so any Kubernetes name (pod
// names may contain '.') is one NATS token: bytes outside [A-Za-z0-9-_]
// become %XX (hex, upper case), so '.', '*', '>', '%' and whitespace never
// appear raw. A cluster-scoped object's namespace token is "_" (no
// namespace name can contain '_').
package bus

import (
	"fmt"
	"strings"
)

// Prefix starts every host subject.
const Prefix = "kplex.host"

// SharedTenant is the tenant token of host-wide objects every shard may
// read (host Nodes): "_" can never be a tenant name.
const SharedTenant = "_"

// Key identifies one host object on the bus.
type Key struct {
	Tenant, Resource, Namespace, Name string
}

// Subject is the object's subject.
func (k Key) Subject() string {
	ns := "_"
	if k.Namespace != "" {
		ns = escape(k.Namespace)
	}
	return strings.Join([]string{Prefix, escape(k.Tenant), escape(k.Resource), ns, escape(k.Name)}, ".")
}

// TenantFilter is the subject filter of every object of a tenant (what a
// shard replays when it takes the tenant over).
func TenantFilter(tenant string) string { return Prefix + "." + escape(tenant) + ".>" }

// ParseSubject reverses Key.Subject.
func ParseSubject(s string) (Key, error) {
	rest, ok := strings.CutPrefix(s, Prefix+".")
	if !ok {
		return Key{}, fmt.Errorf("subject %q: not under %s", s, Prefix)
	}
	tok := strings.Split(rest, ".")
	if len(tok) != 4 {
		return Key{}, fmt.Errorf("subject %q: want %s.<tenant>.<resource>.<namespace>.<name>", s, Prefix)
	}
	var k Key
	var err error
	for i, dst := range []*string{&k.Tenant, &k.Resource, &k.Namespace, &k.Name} {
		if i == 2 && tok[i] == "_" {
			continue
		}
		if *dst, err = unescape(tok[i]); err != nil {
			return Key{}, fmt.Errorf("subject %q: %w", s, err)
		}
	}
	return k, nil
}

func plain(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

func escape(s string) string {
	if s == "" {
		return "%"
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if plain(c) && !(c == '_' && s == "_") {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

func unescape(t string) (string, error) {
	if t == "%" {
		return "", nil
	}
	var b strings.Builder
	for i := 0; i < len(t); i++ {
		c := t[i]
		if c != '%' {
			if !plain(c) {
				return "", fmt.Errorf("token %q: byte %q must be escaped", t, c)
			}
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(t) {
			return "", fmt.Errorf("token %q: truncated escape", t)
		}
		var v byte
		if _, err := fmt.Sscanf(t[i+1:i+3], "%02X", &v); err != nil || fmt.Sprintf("%02X", v) != t[i+1:i+3] {
			return "", fmt.Errorf("token %q: bad escape %q", t, t[i:i+3])
		}
		b.WriteByte(v)
		i += 2
	}
	return b.String(), nil
}
