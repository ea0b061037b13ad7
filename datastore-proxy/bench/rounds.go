package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// This machine's speed drifts by a quarter within minutes, so one pass of
// the rows says little about a ratio. With -rounds N the rows run N times
// in turn, and the tables show each row's median over the rounds: every
// figure of a cell is the median of that figure, so a cell's figures may
// come from different rounds. A further table gives, for each proxied
// cell, the median of the rounds' own ratios to the direct cell measured
// right next to it (pairedTable).

// medianResult is the field-by-field median of rs.
func medianResult(rs []result) result {
	var out result
	for _, c := range cells {
		ss := make([]stat, len(rs))
		for i, r := range rs {
			ss[i] = r.cell(c)
		}
		out.set(c, medianStat(ss))
	}
	return out
}

// medianStat is the median of the rounds in which the cell did not fail;
// it fails, with the last round's error, if the cell failed in every one.
func medianStat(all []stat) stat {
	var ss []stat
	for _, s := range all {
		if s.err == nil {
			ss = append(ss, s)
		}
	}
	if len(ss) == 0 {
		return all[len(all)-1]
	}
	out := stat{
		opsPerSec: median(ss, func(s stat) float64 { return s.opsPerSec }),
		p50:       time.Duration(median(ss, func(s stat) float64 { return float64(s.p50) })),
		p99:       time.Duration(median(ss, func(s stat) float64 { return float64(s.p99) })),
		metered:   ss[0].metered,
	}
	var synced []stat
	for _, s := range ss {
		if s.perSync > 0 {
			synced = append(synced, s)
		}
	}
	if len(synced) > 0 {
		out.perSync = median(synced, func(s stat) float64 { return s.perSync })
	}
	for i := range out.perOp {
		out.perOp[i] = usage{
			cpu:      time.Duration(median(ss, func(s stat) float64 { return float64(s.perOp[i].cpu) })),
			syscalls: median(ss, func(s stat) float64 { return s.perOp[i].syscalls }),
		}
	}
	return out
}

// median of f over xs (the mean of the middle two for an even count).
func median[T any](xs []T, f func(T) float64) float64 {
	v := make([]float64, len(xs))
	for i, x := range xs {
		v[i] = f(x)
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// ratioHeader heads the tables that compare proxied cells with direct
// ones.
const ratioHeader = "| target | puts | gets | lists | watch events | put p99 | get p99 | list p99 | watch event p99 |\n|---|---|---|---|---|---|---|---|---|\n"

// ratio is a proxied cell against its direct cell: throughput as a
// percentage, or (p99) the p99 latency as a factor; false when either
// cell failed.
func ratio(a, d stat, p99 bool) (float64, bool) {
	if a.err != nil || d.err != nil {
		return 0, false
	}
	if p99 {
		return float64(a.p99) / float64(d.p99), true
	}
	return 100 * a.opsPerSec / d.opsPerSec, true
}

// ratioTable compares each proxied row with its direct row (as many
// clients, each a tenant): throughput as a percentage, p99 as a factor.
func ratioTable(rows []string, proxied, direct []result) string {
	var b strings.Builder
	b.WriteString(ratioHeader)
	for i, r := range proxied {
		fmt.Fprintf(&b, "| %s |", rows[i])
		for _, p99 := range []bool{false, true} {
			for _, c := range cells {
				v, ok := ratio(r.cell(c), direct[i].cell(c), p99)
				switch {
				case !ok:
					b.WriteString(" - |")
				case p99:
					fmt.Fprintf(&b, " x%.2f |", v)
				default:
					fmt.Fprintf(&b, " %.0f%% |", v)
				}
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// pairedTable is ratioTable round by round: for each pair of rows
// (proxied rounds, direct rounds), each figure is the median of the
// rounds' own ratios, with their range. A round's two cells ran one right
// after the other, so the machine's drift between rounds, which moves a
// ratio of medians, moves these less.
func pairedTable(names []string, pairs [][2][]result) string {
	var b strings.Builder
	b.WriteString(ratioHeader)
	for i, pr := range pairs {
		fmt.Fprintf(&b, "| %s |", names[i])
		for _, p99 := range []bool{false, true} {
			for _, c := range cells {
				var ratios []float64
				for round := range min(len(pr[0]), len(pr[1])) {
					if v, ok := ratio(pr[0][round].cell(c), pr[1][round].cell(c), p99); ok {
						ratios = append(ratios, v)
					}
				}
				b.WriteString(" " + ratioSpread(ratios, p99) + " |")
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// ratioSpread is the median of ratios and their range, as percentages or
// (factor) as factors; "-" when there are none.
func ratioSpread(ratios []float64, factor bool) string {
	if len(ratios) == 0 {
		return "-"
	}
	m := median(ratios, func(v float64) float64 { return v })
	if factor {
		return fmt.Sprintf("x%.2f (%.2f-%.2f)", m, slices.Min(ratios), slices.Max(ratios))
	}
	return fmt.Sprintf("%.0f%% (%.0f-%.0f)", m, slices.Min(ratios), slices.Max(ratios))
}

// benchRow is one row of the throughput table: tenants clients, through
// the proxy or directly to the store.
type benchRow struct {
	name    string
	tenants int
	direct  bool
}

// tenantCounts are the rows' numbers of tenants (-tenants).
var tenantCounts = []int{1, 10, 100}

// throughput measures every row of e rounds times and prints the tables
// of medians: throughput and latency, against direct, CPU and system calls
// per operation. Each proxied row has a direct row with as many clients
// next to it, and the two run cell by cell, each cell of one right after
// the same cell of the other, the direct one first in odd rounds and
// second in even ones, so that the machine's drift falls on both alike.
// Progress goes to stderr. A cell that fails in a round (an operation's
// error, a watch short of its events) is left out of its medians and
// listed under the tables, the other cells and rows go on, and throughput
// returns an error naming how many failed.
func throughput(ctx context.Context, e *env, conc, ops, rounds int) error {
	var rows []benchRow
	for _, n := range tenantCounts {
		clients := "clients"
		if n == 1 {
			clients = "client"
		}
		hop := fmt.Sprintf("proxy, %d %s", n, strings.Replace(clients, "client", "tenant", 1))
		if e.hopName == "relay" {
			hop = fmt.Sprintf("relay, %d %s", n, clients)
		}
		rows = append(rows, benchRow{fmt.Sprintf("%s, %d %s", e.directName, n, clients), n, true}, benchRow{hop, n, false})
	}
	syncs, err := e.syncCounter()
	if err != nil {
		return err
	}
	results := make([][]result, len(rows))
	var failures []string
	profiles := e.cellProfiles()
	for round := range rounds {
		for p := 0; p < len(rows); p += 2 {
			res, err := measurePair(ctx, e, rows[p:p+2], profiles, syncs, round%2, conc, ops)
			if err != nil {
				return err
			}
			for k, r := range res {
				i := p + k
				results[i] = append(results[i], r)
				failures = append(failures, r.failures(fmt.Sprintf("round %d, %s", round+1, rows[i].name))...)
				fmt.Fprintf(os.Stderr, "round %d of %d, %s: %s\n", round+1, rounds, rows[i].name, r)
			}
		}
	}
	var table, cpuRows, sysRows, syncRows []string
	var proxiedNames []string
	var proxied, direct []result
	for i, r := range rows {
		m := medianResult(results[i])
		table = append(table, fmt.Sprintf("| %s | %s |", r.name, m))
		cpuRows = append(cpuRows, fmt.Sprintf("| %s | %s |", r.name, m.usageRow(false)))
		sysRows = append(sysRows, fmt.Sprintf("| %s | %s |", r.name, m.usageRow(true)))
		if m.put.perSync > 0 || m.watch.perSync > 0 {
			syncRows = append(syncRows, fmt.Sprintf("| %s | %s | %s |", r.name, perSyncCell(m.put), perSyncCell(m.watch)))
		}
		if r.direct {
			direct = append(direct, m)
		} else {
			proxiedNames, proxied = append(proxiedNames, r.name), append(proxied, m)
		}
	}
	of := ""
	if rounds > 1 {
		of = fmt.Sprintf(", median of %d rounds", rounds)
	}
	listName := "list(100)"
	if listStream {
		listName = "list(100) by RangeStream"
	}
	fmt.Printf("| target%s | put ops/s | put p50/p99 ms | get ops/s | get p50/p99 ms | %s ops/s | list p50/p99 ms | watch events/s | event p50/p99 ms |\n|---|---|---|---|---|---|---|---|---|\n%s\n", of, listName, strings.Join(table, "\n"))
	fmt.Printf("\nAgainst direct with as many clients:\n\n%s", ratioTable(proxiedNames, proxied, direct))
	if rounds > 1 {
		var pairs [][2][]result
		for i := 0; i < len(rows); i += 2 {
			pairs = append(pairs, [2][]result{results[i+1], results[i]})
		}
		fmt.Printf("\nRound by round: the median of each round's own ratio of a proxied cell to the direct cell measured next to it, and their range:\n\n%s", pairedTable(proxiedNames, pairs))
	}
	const by = "by process: clients / proxy / store server (total). The store server is etcd, or kine in its direct row; SQLite runs inside the proxy, and PostgreSQL's server is not measured."
	fmt.Printf("\nCPU per operation, µs, %s\n\n| target | put | get | %s | watch event |\n|---|---|---|---|---|\n%s\n", by, listName, strings.Join(cpuRows, "\n"))
	fmt.Printf("\nRead and write system calls per operation, %s\n\n| target | put | get | %s | watch event |\n|---|---|---|---|---|\n%s\n", by, listName, strings.Join(sysRows, "\n"))
	if len(syncRows) > 0 {
		fmt.Printf("\netcd's writes per WAL sync (walsyncs.go): how many writes each of its disk syncs carried, and the syncs a second\n\n| target | put | watch event |\n|---|---|---|\n%s\n", strings.Join(syncRows, "\n"))
	}
	if rss := peakRSS(e.proxy.pid()); rss > 0 {
		fmt.Printf("\nThe %s's peak resident memory over these rows: %.0f MiB.\n", e.hopName, rss)
	}
	if len(failures) > 0 {
		fmt.Printf("\nFailed cells, left out of the medians:\n\n- %s\n", strings.Join(failures, "\n- "))
		return fmt.Errorf("%d cells failed", len(failures))
	}
	return nil
}

// measurePair measures a pair of rows (a direct one and its proxied one)
// cell by cell, rows[first] first in each cell. A client that cannot
// connect fails its row's cells; a client that cannot be made ends the
// run.
func measurePair(ctx context.Context, e *env, rows []benchRow, profiles *cellProfiler, syncs func(context.Context) (float64, error), first, conc, ops int) ([2]result, error) {
	var res [2]result
	var runs [2]*rowRun
	for k, r := range rows {
		clients, prefixes, cleanup, err := e.clients(r.tenants, r.direct)
		if err != nil {
			return res, fmt.Errorf("%s: %w", r.name, err)
		}
		defer cleanup()
		run, err := newRowRun(ctx, clients, prefixes, e.meters(!r.direct), profiles.around(r.name, r.direct))
		if err != nil {
			res[k] = failedResult(err)
			continue
		}
		run.syncs = syncs
		runs[k] = run
	}
	for _, cell := range cells {
		for n := range 2 {
			if k := first ^ n; runs[k] != nil {
				res[k].set(cell, runs[k].cell(ctx, cell, conc, ops))
			}
		}
	}
	return res, nil
}

// failures are the cells of r that failed, each named after where.
func (r result) failures(where string) []string {
	var out []string
	for _, c := range cells {
		if err := r.cell(c).err; err != nil {
			out = append(out, fmt.Sprintf("%s, %s: %v", where, c, err))
		}
	}
	return out
}

// perSyncCell is a writing cell's writes per WAL sync and the syncs a
// second they imply at its rate.
func perSyncCell(s stat) string {
	if s.err != nil || s.perSync == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f (%.0f/s)", s.perSync, s.opsPerSec/s.perSync)
}
