package process

import (
	"math"
	"strconv"

	"kplex.dev/operator/internal/runtime"
)

// LimitsEnv applies a component's resource limits the way a process can:
// as limits of the Go runtime (there are no cgroups here). A memory limit
// becomes GOMEMLIMIT at 90% of it (the collector works harder as the heap
// nears it; the rest is left for what the Go runtime does not count), and
// a CPU limit becomes GOMAXPROCS, rounded up. Requests only place pods,
// and there is nothing to place: they are not applied. Replicas are not
// either: the process runtime runs one of each component.
func LimitsEnv(s runtime.Size) []string {
	var env []string
	if m := s.Resources.Limits.Memory(); !m.IsZero() {
		env = append(env, "GOMEMLIMIT="+strconv.FormatInt(m.Value()/10*9, 10))
	}
	if c := s.Resources.Limits.Cpu(); !c.IsZero() {
		env = append(env, "GOMAXPROCS="+strconv.FormatInt(max(1, int64(math.Ceil(float64(c.MilliValue())/1000))), 10))
	}
	return env
}
