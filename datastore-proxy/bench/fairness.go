package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// fairness measures a quiet tenant's get and put p99 alone, then while a
// flooding tenant runs 4 x conc concurrent writers against the same proxy;
// three rounds, reporting each ratio's median and range (p99 of a few
// hundred samples is noisy on a shared two-core machine).
func fairness(ctx context.Context, e *env, conc int) (string, error) {
	var gets, puts []float64
	var last string
	for round := range 3 {
		g, p, detail, err := fairnessRound(ctx, e, conc, round)
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

func fairnessRound(ctx context.Context, e *env, conc, round int) (getRatio, putRatio float64, detail string, err error) {
	quietC, closeQ, err := e.clientsNamed(fmt.Sprintf("quiet-%d", round))
	if err != nil {
		return 0, 0, "", err
	}
	defer closeQ()
	floodC, closeF, err := e.clientsNamed(fmt.Sprintf("flood-%d", round))
	if err != nil {
		return 0, 0, "", err
	}
	defer closeF()
	quiet := func(tag string) (get, put time.Duration) {
		g := parallel(1, 1000, func(_, i int) error {
			_, err := quietC.Get(ctx, fmt.Sprintf("/registry/quiet/%s/%d", tag, i%20))
			return err
		})
		p := parallel(1, 500, func(_, i int) error {
			_, err := quietC.Put(ctx, fmt.Sprintf("/registry/quiet/%s/%d", tag, i), string(value))
			return err
		})
		return g.p99, p.p99
	}
	aloneGet, alonePut := quiet("alone")

	fctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := range 4 * conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; fctx.Err() == nil; i++ {
				_, _ = floodC.Put(fctx, fmt.Sprintf("/registry/flood/w%d/%d", w, i%500), string(value))
			}
		}()
	}
	time.Sleep(time.Second)
	loadGet, loadPut := quiet("flooded")
	stop()
	wg.Wait()
	return ms(loadGet) / ms(aloneGet), ms(loadPut) / ms(alonePut),
		fmt.Sprintf("get p99 %.2f ms alone, %.2f ms flooded; put p99 %.2f ms alone, %.2f ms flooded",
			ms(aloneGet), ms(loadGet), ms(alonePut), ms(loadPut)), nil
}

func (e *env) clientsNamed(tenant string) (*clientv3.Client, func(), error) {
	tlsCfg, err := e.pki.clientTLS(tenant)
	if err != nil {
		return nil, nil, err
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{"https://" + e.proxyEndpoint}, TLS: tlsCfg, DialTimeout: 5 * time.Second})
	if err != nil {
		return nil, nil, err
	}
	return c, func() { _ = c.Close() }, nil
}
