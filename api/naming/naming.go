// Package naming is the contract for where a tenant's object lives on the
// host and how it is recognised there.
//
// A tenant's objects all go to one host namespace, HostNamespace(tenant);
// inside it, a virtual object (namespace ns, name n) is named HostName(ns,
// n). Together they are collision-free across tenants for any names a
// tenant can choose:
//
//   - HostNamespace is "kplex-" + tenant: tenants are DNS labels, so
//     distinct tenants get distinct namespaces.
//   - HostName is "<n>-<ns>-<len(ns)>" when that fits in 63 characters. It
//     decodes back to (ns, n) unambiguously from the right: the last
//     segment is all digits and says how long the namespace is.
//   - Otherwise it is "<readable prefix>-h<hash>", the hash (60 bits of
//     SHA-256 over tenant-independent (ns, n)) in base32 starting with 'h',
//     so it can never equal a short form, whose last segment is digits.
//
// Host names are at most 63 characters, so they are valid for every kind
// (Services need DNS labels). The virtual identity is also recorded in
// annotations (Annotations), so the mapping is reversible from the host
// object alone even when the hash form was used.
package naming

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"strconv"
	"strings"
)

// MaxNameLength is the longest host name: a DNS label.
const MaxNameLength = 63

// HostNamespace is the host namespace holding a tenant's objects.
func HostNamespace(tenant string) string { return "kplex-" + tenant }

// TenantOfHostNamespace reverses HostNamespace.
func TenantOfHostNamespace(hostNS string) (string, bool) {
	t, ok := strings.CutPrefix(hostNS, "kplex-")
	return t, ok && t != ""
}

var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// HostName is the host name of virtual object name in virtual namespace ns
// (ns is "" for cluster-scoped objects).
func HostName(ns, name string) string {
	short := name + "-" + ns + "-" + strconv.Itoa(len(ns))
	if len(short) <= MaxNameLength {
		return short
	}
	sum := sha256.Sum256([]byte(strconv.Itoa(len(ns)) + "/" + ns + "/" + name))
	hash := "h" + b32.EncodeToString(sum[:])[:12] // 60 bits
	room := MaxNameLength - len(hash) - 1
	prefix := strings.TrimRight(truncate(name+"-"+ns, room), "-.")
	return prefix + "-" + hash
}

// ParseHostName recovers (ns, name) from a short-form host name; hash
// forms (and anything else) return false: read the annotations instead.
func ParseHostName(host string) (ns, name string, ok bool) {
	i := strings.LastIndexByte(host, '-')
	if i < 0 {
		return "", "", false
	}
	n, err := strconv.Atoi(host[i+1:])
	if err != nil || n < 0 || strconv.Itoa(n) != host[i+1:] {
		return "", "", false
	}
	rest := host[:i] // "<name>-<ns>"
	if len(rest) < n+1 || rest[len(rest)-n-1] != '-' {
		return "", "", false
	}
	return rest[len(rest)-n:], rest[:len(rest)-n-1], true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// Identity is a virtual object's identity as recorded on its host object.
type Identity struct {
	Tenant, Namespace, Name string
}

// String is "tenant/namespace/name".
func (id Identity) String() string { return fmt.Sprintf("%s/%s/%s", id.Tenant, id.Namespace, id.Name) }
