package bench

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"kplex.dev/cli/localenv"
	"kplex.dev/cli/supervise"
)

// Memory is a process's resident and proportional set sizes, in KiB.
type Memory struct{ RSS, PSS int64 }

// Memories reads RSS and PSS (smaps_rollup) of every running process of
// the environment, by process name.
func Memories(l localenv.Layout) map[string]Memory {
	out := map[string]Memory{}
	pids, _ := filepath.Glob(filepath.Join(l.Root, "run", "*.pid"))
	for _, p := range pids {
		st, pf, _ := supervise.Inspect(p)
		if st != supervise.Running {
			continue
		}
		f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pf.PID))
		if err != nil {
			continue
		}
		var m Memory
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 2 {
				continue
			}
			v, _ := strconv.ParseInt(fields[1], 10, 64)
			switch fields[0] {
			case "Rss:":
				m.RSS = v
			case "Pss:":
				m.PSS = v
			}
		}
		f.Close()
		out[strings.TrimSuffix(filepath.Base(p), ".pid")] = m
	}
	return out
}
