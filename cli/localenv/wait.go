package localenv

import (
	"context"
	"fmt"
	"io"
	"time"

	"kplex.dev/cli/supervise"
)

// waitReady polls probe until it succeeds, printing a progress line every
// few seconds with the last probe error. It fails early, with the log tail,
// if proc (nil when the process was already running) exits.
func waitReady(ctx context.Context, out io.Writer, name string, proc *supervise.Process, logPath string, timeout time.Duration, probe func(context.Context) error) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var exited <-chan struct{}
	if proc != nil {
		exited = proc.Exited()
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	nextReport := start.Add(3 * time.Second)
	var lastErr error
	for {
		pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
		lastErr = probe(pctx)
		pcancel()
		if lastErr == nil {
			fmt.Fprintf(out, "  ready: %-28s %5.1fs\n", name, time.Since(start).Seconds())
			return nil
		}
		if now := time.Now(); now.After(nextReport) {
			fmt.Fprintf(out, "  waiting for %s (%.0fs): %v\n", name, now.Sub(start).Seconds(), lastErr)
			nextReport = now.Add(3 * time.Second)
		}
		select {
		case <-exited:
			return &exitedEarlyError{name: name, exit: proc.ExitErr(), logPath: logPath, tail: supervise.Tail(logPath, 25)}
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s: %v; last lines of %s:\n%s",
				name, timeout, lastErr, logPath, supervise.Tail(logPath, 25))
		case <-tick.C:
		}
	}
}

// exitedEarlyError: the process exited before it was ready.
type exitedEarlyError struct {
	name, logPath, tail string
	exit                error
}

func (e *exitedEarlyError) Error() string {
	return fmt.Sprintf("%s exited (%v) before it was ready; last lines of %s:\n%s", e.name, e.exit, e.logPath, e.tail)
}
