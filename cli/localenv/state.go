package localenv

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"kplex.dev/cli/ports"
)

// State is what `up` decided and later commands (status, down, a second up)
// must agree on: the ports and the shape of the environment. It is written
// once, before anything starts, and reused until `down --purge`.
type State struct {
	Ports       ports.Set `json:"ports"`
	Nodes       int       `json:"nodes"`
	NodeKind    string    `json:"nodeKind"`
	PodCIDR     string    `json:"podCIDR"`
	ServiceCIDR string    `json:"serviceCIDR"`
	VClusters   []string  `json:"vclusters"`
	// HostOnly: a host cluster and nodes, without the kplex platform.
	HostOnly bool `json:"hostOnly,omitempty"`
}

// LoadState reads the state file; an absent file wraps fs.ErrNotExist.
func LoadState(l Layout) (*State, error) {
	b, err := os.ReadFile(l.State())
	if err != nil {
		return nil, fmt.Errorf("read environment state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("environment state %s is corrupt (remove %s to start over): %w", l.State(), l.Root, err)
	}
	return &s, nil
}

// Save writes the state file atomically.
func (s *State) Save(l Layout) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	if err := os.MkdirAll(l.Root, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", l.Root, err)
	}
	tmp := filepath.Join(l.Root, ".state.json.tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if err := os.Rename(tmp, l.State()); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return nil
}

func stateExists(l Layout) (bool, error) {
	_, err := os.Stat(l.State())
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}
