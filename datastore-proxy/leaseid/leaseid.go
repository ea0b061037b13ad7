// Package leaseid spells the etcd lease IDs the proxy grants, so that the
// lease a tenant reads on its key tells it the key's TTL and nothing more.
//
// Tenants see kine's lease model: a lease is its TTL (LeaseGrant answers
// the TTL as the lease ID, and a key put with lease N expires N seconds
// later), and a key's lease reads back as that TTL. On etcd the proxy
// grants real leases and shares each among the keys of every tenant put
// with about the same TTL at about the same time (etcdbackend's lease
// cache). Had etcd chosen the IDs, a tenant would read on its own keys
// IDs that other tenants' keys share, and from how far apart they are, how
// many leases the others took meanwhile. So the proxy chooses each ID
// itself: the low TTLBits bits are the TTL the lease was granted for (its
// class, without the reuse window), the rest random; readers report TTL(id)
// as the key's lease, on every path (decoded answers, raw lists, watches).
//
// A key put by a proxy from before this scheme, with an ID etcd chose,
// reads as some number below 2^TTLBits: kube-apiserver, the client the
// proxy serves, never reads a key's lease.
package leaseid

// TTLBits is the width of the TTL in an ID: etcd's longest lease, 9e9
// seconds, fits.
const TTLBits = 34

const ttlMask = 1<<TTLBits - 1

// MaxTTL is etcd's longest lease (lease.MaxLeaseTTL, about 285 years). A
// longer TTL, such as a real lease ID a client sent where kine takes a TTL,
// is refused as etcd refuses it, on every backend: kine's expiry would
// overflow and delete the key at once.
const MaxTTL = 9_000_000_000

// MinTTL is the shortest lease etcd grants with its default election
// timeout (1 s: 1.5 election timeouts, rounded up); etcd raises a shorter
// grant to it.
const MinTTL = 2

// New returns the ID for a lease of ttl seconds (0 < ttl < 2^TTLBits), its
// other bits random's top 29: positive, never 0 (etcd's "no lease").
func New(ttl int64, random uint64) int64 {
	return int64(random>>(TTLBits+1))<<TTLBits | ttl&ttlMask
}

// TTL is the TTL that id stands for.
func TTL(id int64) int64 { return id & ttlMask }
