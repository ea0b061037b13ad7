package kube

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// specHash digests a desired object (labels, annotations, spec).
func specHash(o client.Object) string {
	b, err := json.Marshal(o)
	if err != nil { // typed API objects always marshal
		panic(fmt.Sprintf("marshal %T: %v", o, err))
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}

// dataHash digests a Secret's data.
func dataHash(data map[string][]byte) string {
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(data)) {
		fmt.Fprintf(h, "%s %d\n", k, len(data[k]))
		h.Write(data[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

func equalData(a, b map[string][]byte) bool { return dataHash(a) == dataHash(b) }
