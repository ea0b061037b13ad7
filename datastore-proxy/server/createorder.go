package server

import (
	"context"
	"sync"
)

// createOrder keeps a tenant stream's answers to create requests in the
// order of the requests, as etcd sends them (etcd's client matches each
// created answer to its oldest create still unanswered). kine answers the
// creates it starts from a goroutine of each watch, in order, but the
// proxy refuses a create (the tenant's maxWatches, its request rate, a
// range etcd refuses) from the stream's reading goroutine: such a refusal
// could overtake the answer to an earlier create that kine was still
// catching up for, and the client then took the refusal for the earlier
// watch and the earlier watch's answer for the refused one. A refusal
// now waits until every create passed on to kine has been answered.
type createOrder struct {
	mu      sync.Mutex
	pending int           // creates passed on to kine and not yet answered
	drained chan struct{} // closed when pending falls to 0; nil while it is 0
}

// passed records a create passed on to kine, to be answered with a watch
// ID (created).
func (o *createOrder) passed() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pending == 0 {
		o.drained = make(chan struct{})
	}
	o.pending++
}

// answered records kine's created answer to the oldest create passed on.
func (o *createOrder) answered() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pending == 0 {
		return
	}
	if o.pending--; o.pending == 0 {
		close(o.drained)
		o.drained = nil
	}
}

// wait returns once every create passed on has been answered, or with
// ctx's error.
func (o *createOrder) wait(ctx context.Context) error {
	o.mu.Lock()
	ch := o.drained
	o.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
