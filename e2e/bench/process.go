package bench

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"kplex.dev/cli/localenv"
	"kplex.dev/cli/supervise"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times (100 on
// every Linux this runs on).
const clockTicks = 100

// cpuTimes reads the CPU seconds every process of the environment used.
func CPUTimes(l localenv.Layout) map[string]float64 {
	out := map[string]float64{}
	pids, _ := filepath.Glob(filepath.Join(l.Root, "run", "*.pid"))
	for _, p := range pids {
		name := strings.TrimSuffix(filepath.Base(p), ".pid")
		_, pf, err := supervise.Inspect(p)
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pf.PID))
		if err != nil {
			continue
		}
		// Fields after the command (which may hold spaces) start at ") ".
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseFloat(f[11], 64)
		s, _ := strconv.ParseFloat(f[12], 64)
		out[name] = (u + s) / clockTicks
	}
	return out
}

// cpuReport prints the CPU seconds each process spent between two readings,
// largest first, grouping tenants' processes.
func CPUReport(title string, before, after map[string]float64) {
	type row struct {
		name string
		s    float64
	}
	groups := map[string]float64{}
	total := 0.0
	for name, a := range after {
		d := a - before[name]
		g := name
		if i := strings.Index(name, "-"); i > 0 && strings.HasPrefix(name, "t") && (strings.HasSuffix(name, "-apiserver") || strings.HasSuffix(name, "-controller-manager")) {
			g = "tenant" + name[i:]
		}
		if strings.HasPrefix(name, "vc-") { // operator-made: vc-<tenant>-<component>
			for _, c := range []string{"apiserver", "controller-manager", "scheduler"} {
				if strings.HasSuffix(name, "-"+c) {
					g = "tenant-" + c
				}
			}
		}
		groups[g] += d
		total += d
	}
	var rows []row
	for n, s := range groups {
		if s >= 0.05 {
			rows = append(rows, row{n, s})
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].s > rows[j].s })
	parts := make([]string, len(rows))
	for i, r := range rows {
		parts[i] = fmt.Sprintf("%s %.1f", r.name, r.s)
	}
	fmt.Printf("- CPU seconds, %s: total %.1f (%s)\n", title, total, strings.Join(parts, ", "))
}

// ShardLiveHeap is the environment's syncer shard's live heap.
func ShardLiveHeap(l localenv.Layout) (int64, error) {
	st, err := localenv.LoadState(l)
	if err != nil {
		return 0, err
	}
	return LiveHeap(st.Ports[localenv.PortShardMetrics])
}

// LiveHeap is the live heap of a kplex-syncer run with --profiling whose
// metrics are on port: a heap profile with gc=1 collects first, then the
// heap in use is read from its metrics.
func LiveHeap(port int) (int64, error) {
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	resp, err := http.Get(base + "/debug/pprof/heap?gc=1")
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	resp, err = http.Get(base + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "go_memstats_heap_alloc_bytes "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return int64(f), err
		}
	}
	return 0, fmt.Errorf("no go_memstats_heap_alloc_bytes in the shard's metrics")
}
