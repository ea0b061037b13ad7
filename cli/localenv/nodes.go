package localenv

import (
	"fmt"
)

// nodeProvider supplies the host cluster's nodes. KWOK simulates them now;
// a real kubelet node (containerd) is another provider behind the same
// interface, so nothing else in the environment knows what a node is made
// of.
type nodeProvider interface {
	// components are the processes that run the nodes, started after the
	// host control plane. Their readiness means every node is Ready.
	components() []component
}

// NodeKinds are the node providers `up --node-kind` accepts.
var NodeKinds = []string{"kwok"}

func newNodeProvider(e *env) (nodeProvider, error) {
	switch e.state.NodeKind {
	case "kwok":
		return &kwokNodes{e: e}, nil
	default:
		return nil, fmt.Errorf("node kind %q: want one of %v", e.state.NodeKind, NodeKinds)
	}
}
