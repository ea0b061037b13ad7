package framework

import (
	"context"
	"testing"
	"time"
)

// Eventually polls cond every 200ms until it returns nil or timeout passes,
// then fails the test with the last error and what describe prints.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func(ctx context.Context) error, describe func() string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last error
	for {
		if last = cond(ctx); last == nil {
			return
		}
		select {
		case <-ctx.Done():
			extra := ""
			if describe != nil {
				extra = "\n" + describe()
			}
			t.Fatalf("%s: not within %s: %v%s", what, timeout, last, extra)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
