package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// fairness measures a quiet tenant's get and put p99 alone, then while a
// flooding tenant, in a process of its own (flood.go), runs writers
// concurrent writers against the same proxy;
// three rounds, reporting each ratio's median and range (p99 of a few
// hundred samples is noisy on a shared two-core machine). With direct, the
// same two clients talk to the backend itself, without the proxy: with as
// many writers, the baseline of a store shared with no fair share at all;
// with one writer, the least any concurrent writing costs the quiet
// tenant on that store (etcd: a linearizable read waits for the raft
// round, and so the disk sync, of writes in flight).
func fairness(ctx context.Context, e *env, writers int, direct bool) (string, error) {
	var gets, puts []float64
	var last string
	for round := range 3 {
		g, p, detail, err := fairnessRound(ctx, e, writers, round, direct)
		if err != nil {
			return "", err
		}
		gets, puts, last = append(gets, g), append(puts, p), detail
	}
	slices.Sort(gets)
	slices.Sort(puts)
	return fmt.Sprintf("quiet tenant's p99 under a flood vs alone, median (range) of 3 rounds: get x%.1f (x%.1f-x%.1f), put x%.1f (x%.1f-x%.1f); target x2. Last round: %s",
		gets[1], gets[0], gets[2], puts[1], puts[0], puts[2], last), nil
}

func fairnessRound(ctx context.Context, e *env, writers, round int, direct bool) (getRatio, putRatio float64, detail string, err error) {
	endpoint, quietName, floodName := e.proxyEndpoint, fmt.Sprintf("quiet-%d", round), fmt.Sprintf("flood-%d", round)
	if direct {
		endpoint, quietName, floodName = e.directEndpoint, "direct", "direct"
	}
	quietC, closeQ, err := e.client(endpoint, quietName)
	if err != nil {
		return 0, 0, "", err
	}
	defer closeQ()
	quiet := func(tag string) (get, put time.Duration, err error) {
		g := parallel(1, 1000, func(_, i int) error {
			_, err := quietC.Get(ctx, fmt.Sprintf("/registry/quiet/%s/%d", tag, i%20))
			return err
		})
		p := parallel(1, 500, func(_, i int) error {
			_, err := quietC.Put(ctx, fmt.Sprintf("/registry/quiet/%s/%d", tag, i), string(value))
			return err
		})
		if err := errors.Join(g.err, p.err); err != nil {
			return 0, 0, fmt.Errorf("the quiet tenant's %s requests: %w", tag, err)
		}
		return g.p99, p.p99, nil
	}
	aloneGet, alonePut, err := quiet("alone")
	if err != nil {
		return 0, 0, "", err
	}

	stop, err := e.startFlood(endpoint, floodName, writers)
	if err != nil {
		return 0, 0, "", err
	}
	time.Sleep(time.Second)
	loadGet, loadPut, qerr := quiet("flooded")
	tally, err := stop()
	if err := errors.Join(qerr, err); err != nil {
		return 0, 0, "", err
	}
	secs := tally.seconds
	return ms(loadGet) / ms(aloneGet), ms(loadPut) / ms(alonePut),
		fmt.Sprintf("get p99 %.2f ms alone, %.2f ms flooded; put p99 %.2f ms alone, %.2f ms flooded; the flood's puts a second: %.0f done, %.0f refused with too many requests, %.0f failed otherwise",
			ms(aloneGet), ms(loadGet), ms(alonePut), ms(loadPut), float64(tally.ok)/secs, float64(tally.refused)/secs, float64(tally.failed)/secs), nil
}

// client connects to endpoint with a client certificate for name.
func (e *env) client(endpoint, name string) (*clientv3.Client, func(), error) {
	tlsCfg, err := e.pki.clientTLS(name)
	if err != nil {
		return nil, nil, err
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{"https://" + endpoint}, TLS: tlsCfg, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, nil, err
	}
	return c, func() { _ = c.Close() }, nil
}
