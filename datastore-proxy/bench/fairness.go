package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// fairness measures a quiet tenant's get and put p99 alone, then while a
// flooding tenant runs 4 x conc concurrent writers against the same proxy.
func fairness(ctx context.Context, e *env, conc int) (string, error) {
	quietC, closeQ, err := e.clientsNamed("quiet")
	if err != nil {
		return "", err
	}
	defer closeQ()
	floodC, closeF, err := e.clientsNamed("flood")
	if err != nil {
		return "", err
	}
	defer closeF()
	quiet := func(tag string) (get, put time.Duration) {
		g := parallel(1, 400, func(_, i int) error {
			_, err := quietC.Get(ctx, fmt.Sprintf("/registry/quiet/%s/%d", tag, i%20))
			return err
		})
		p := parallel(1, 200, func(_, i int) error {
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
	return fmt.Sprintf("quiet tenant get p99 %.2f ms alone, %.2f ms while another tenant floods (x%.1f); put p99 %.2f ms alone, %.2f ms flooded (x%.1f); target x2",
		ms(aloneGet), ms(loadGet), ms(loadGet)/ms(aloneGet), ms(alonePut), ms(loadPut), ms(loadPut)/ms(alonePut)), nil
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
