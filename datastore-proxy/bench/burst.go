package main

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// The fair share's price and its reach, beside a neighbour that is active
// but nearly idle (puts once every burstTick, as an apiserver renewing its
// leases does), each for burstSeconds.
const (
	burstSeconds = 5
	burstTick    = 100 * time.Millisecond
)

// burstPrice measures what the fair share costs a tenant writing in bulk
// (a rollout, a namespace's deletion) beside that neighbour, and what the
// bulk writer costs the neighbour: the flood's puts a second through the
// proxy beside the neighbour against alone, and the neighbour's put
// latency beside the flood against with no flood. A fair share that holds
// a flood back whenever anyone else is around shows in the first figure
// as a fraction of the flood's rate; one that never holds it back, in the
// second as the neighbour's latency.
func burstPrice(ctx context.Context, e *env, writers int) (string, error) {
	alone, _, err := burstRun(ctx, e, "burst-alone", writers, false)
	if err != nil {
		return "", err
	}
	_, quiet, err := burstRun(ctx, e, "burst-quiet", 0, true)
	if err != nil {
		return "", err
	}
	beside, flooded, err := burstRun(ctx, e, "burst-beside", writers, true)
	if err != nil {
		return "", err
	}
	q50, q99 := p50p99(quiet)
	f50, f99 := p50p99(flooded)
	return fmt.Sprintf("a %d-writer flood's puts a second alone %.0f, beside a tenant putting once every %v %.0f (%.0f%%); that tenant's put p50 / p99 (of %d) %.2f / %.2f ms with no flood, %.2f / %.2f ms beside it (x%.1f / x%.1f)",
		writers, alone, burstTick, beside, 100*beside/alone, len(quiet),
		ms(q50), ms(q99), ms(f50), ms(f99), ms(f50)/ms(q50), ms(f99)/ms(q99)), nil
}

// burstRun runs, for burstSeconds, a flood of writers writers as tenant
// name (none if 0) and, if neighbour, a tenant putting every burstTick. It
// returns the flood's puts done a second and the neighbour's put
// latencies, sorted.
func burstRun(ctx context.Context, e *env, name string, writers int, neighbour bool) (float64, []time.Duration, error) {
	time.Sleep(2 * time.Second) // the tenants of earlier measurements go quiet
	nctx, stopNeighbour := context.WithCancel(ctx)
	defer stopNeighbour()
	type result struct {
		lat []time.Duration
		err error
	}
	neighbourDone := make(chan result, 1)
	if neighbour {
		c, closeC, err := e.client(e.proxyEndpoint, name+"-neighbour")
		if err != nil {
			return 0, nil, err
		}
		defer closeC()
		go func() {
			tick := time.NewTicker(burstTick)
			defer tick.Stop()
			var lat []time.Duration
			for i := 0; ; i++ {
				t0 := time.Now()
				_, err := c.Put(nctx, fmt.Sprintf("/registry/leases/l%d", i%10), string(value))
				switch {
				case nctx.Err() != nil:
				case err != nil:
					neighbourDone <- result{err: fmt.Errorf("the neighbour's put: %w", err)}
					return
				default:
					lat = append(lat, time.Since(t0))
				}
				select {
				case <-nctx.Done():
					slices.Sort(lat)
					neighbourDone <- result{lat: lat}
					return
				case <-tick.C:
				}
			}
		}()
	} else {
		neighbourDone <- result{}
	}
	var rate float64
	if writers > 0 {
		stop, err := e.startFlood(e.proxyEndpoint, name, writers)
		if err != nil {
			return 0, nil, err
		}
		time.Sleep(burstSeconds * time.Second)
		tally, err := stop()
		if err != nil {
			return 0, nil, err
		}
		if tally.failed > 0 || tally.refused > 0 {
			return 0, nil, fmt.Errorf("flood %s: %d puts refused, %d failed", name, tally.refused, tally.failed)
		}
		rate = float64(tally.ok) / tally.seconds
	} else {
		time.Sleep(burstSeconds * time.Second)
	}
	stopNeighbour()
	r := <-neighbourDone
	if r.err == nil && neighbour && len(r.lat) < 2 {
		r.err = fmt.Errorf("the neighbour got %d puts through in %d s", len(r.lat), burstSeconds)
	}
	return rate, r.lat, r.err
}
