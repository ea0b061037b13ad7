package bus

import "time"

// OwnersBucket is the NATS KV bucket of tenant ownership: key = tenant,
// value = an OwnerRecord (JSON) naming the syncer shard holding the
// tenant's lease. The shards write it; the operator reads it for
// VirtualCluster status.
const OwnersBucket = "kplex-owners"

// OwnerRecord is one tenant's lease holder.
type OwnerRecord struct {
	Shard string    `json:"shard"`
	Since time.Time `json:"since"`
}
