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
// come from different rounds.

// medianResult is the field-by-field median of rs.
func medianResult(rs []result) result {
	var out result
	pick := func(f func(r result) stat) stat {
		ss := make([]stat, len(rs))
		for i, r := range rs {
			ss[i] = f(r)
		}
		return medianStat(ss)
	}
	out.put = pick(func(r result) stat { return r.put })
	out.get = pick(func(r result) stat { return r.get })
	out.list = pick(func(r result) stat { return r.list })
	out.watch = pick(func(r result) stat { return r.watch })
	return out
}

func medianStat(ss []stat) stat {
	out := stat{
		opsPerSec: median(ss, func(s stat) float64 { return s.opsPerSec }),
		p50:       time.Duration(median(ss, func(s stat) float64 { return float64(s.p50) })),
		p99:       time.Duration(median(ss, func(s stat) float64 { return float64(s.p99) })),
		metered:   ss[0].metered,
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

// ratioTable compares each proxied row with its direct row (as many
// clients, each a tenant): throughput as a percentage, p99 as a factor.
func ratioTable(rows []string, proxied, direct []result) string {
	var b strings.Builder
	b.WriteString("| target | puts | gets | lists | watch events | put p99 | get p99 | list p99 | watch event p99 |\n|---|---|---|---|---|---|---|---|---|\n")
	pct := func(a, d float64) string { return fmt.Sprintf("%.0f%%", 100*a/d) }
	x := func(a, d time.Duration) string { return fmt.Sprintf("x%.2f", float64(a)/float64(d)) }
	for i, r := range proxied {
		d := direct[i]
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", rows[i],
			pct(r.put.opsPerSec, d.put.opsPerSec), pct(r.get.opsPerSec, d.get.opsPerSec),
			pct(r.list.opsPerSec, d.list.opsPerSec), pct(r.watch.opsPerSec, d.watch.opsPerSec),
			x(r.put.p99, d.put.p99), x(r.get.p99, d.get.p99), x(r.list.p99, d.list.p99), x(r.watch.p99, d.watch.p99))
	}
	return b.String()
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
// next to it, first in odd rounds and second in even ones, so that the
// machine's drift falls on both alike. Progress goes to stderr.
func throughput(ctx context.Context, e *env, conc, ops, rounds int) error {
	var rows []benchRow
	for _, n := range tenantCounts {
		clients := "clients"
		if n == 1 {
			clients = "client"
		}
		rows = append(rows,
			benchRow{fmt.Sprintf("%s, %d %s", e.directName, n, clients), n, true},
			benchRow{fmt.Sprintf("proxy, %d %s", n, strings.Replace(clients, "client", "tenant", 1)), n, false})
	}
	results := make([][]result, len(rows))
	profiles := e.cellProfiles()
	for round := range rounds {
		for i := range rows {
			if round%2 == 1 {
				i ^= 1 // the other of the pair first
			}
			r := rows[i]
			clients, prefixes, cleanup, err := e.clients(r.tenants, r.direct)
			if err != nil {
				return fmt.Errorf("%s: %w", r.name, err)
			}
			meters = e.meters(!r.direct)
			res := measure(ctx, clients, prefixes, conc, ops, profiles.around(r.name, r.direct))
			cleanup()
			results[i] = append(results[i], res)
			fmt.Fprintf(os.Stderr, "round %d of %d, %s: %s\n", round+1, rounds, r.name, res)
		}
	}
	var table, cpuRows, sysRows []string
	var proxiedNames []string
	var proxied, direct []result
	for i, r := range rows {
		m := medianResult(results[i])
		table = append(table, fmt.Sprintf("| %s | %s |", r.name, m))
		cpuRows = append(cpuRows, fmt.Sprintf("| %s | %s |", r.name, m.usageRow(false)))
		sysRows = append(sysRows, fmt.Sprintf("| %s | %s |", r.name, m.usageRow(true)))
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
	const by = "by process: clients / proxy / store server (total). The store server is etcd, or kine in its direct row; SQLite runs inside the proxy, and PostgreSQL's server is not measured."
	fmt.Printf("\nCPU per operation, µs, %s\n\n| target | put | get | %s | watch event |\n|---|---|---|---|---|\n%s\n", by, listName, strings.Join(cpuRows, "\n"))
	fmt.Printf("\nRead and write system calls per operation, %s\n\n| target | put | get | %s | watch event |\n|---|---|---|---|---|\n%s\n", by, listName, strings.Join(sysRows, "\n"))
	if rss := peakRSS(e.proxy.pid()); rss > 0 {
		fmt.Printf("\nThe proxy's peak resident memory over these rows: %.0f MiB.\n", rss)
	}
	return nil
}
