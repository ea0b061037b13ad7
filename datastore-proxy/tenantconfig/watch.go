package tenantconfig

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"sync/atomic"
	"time"
)

// Store holds the current config; the zero Store has no limits.
type Store struct {
	cur atomic.Pointer[Config]
}

// Current is the config in force (nil: no limits).
func (s *Store) Current() *Config { return s.cur.Load() }

// For is the tenant's limits under the current config.
func (s *Store) For(tenant string) Limits { return s.cur.Load().For(tenant) }

// Set replaces the config.
func (s *Store) Set(c *Config) { s.cur.Store(c) }

// Watch loads path now (an error here is fatal to the caller) and then
// re-reads it every interval until ctx ends, applying each change that
// parses and logging (keeping the last good config) each that does not.
// onReload is called after every attempt with its error.
//
// A change is applied once it has read the same twice in a row, an
// interval apart: a file rewritten in place (an editor, cp, a shell's >)
// can be read half written, and half a config often parses (limits cut
// short, a missing tenants: section), so read at once it could hold
// tenants to wrong limits, or none, until the next read. A file that
// stays broken is logged once, not at every read.
func (s *Store) Watch(ctx context.Context, path string, interval time.Duration, log *slog.Logger, onReload func(error)) error {
	last, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	c, err := Parse(last)
	if err != nil {
		return err
	}
	s.Set(c)
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		r := reader{last: last}
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			c, report, err := r.read(os.ReadFile(path))
			if c != nil {
				s.Set(c)
				log.Info("tenant config reloaded", "path", path, "tenants", len(c.Tenants))
			}
			if err != nil {
				log.Error("tenant config not reloaded; keeping the last good one", "path", path, "err", err)
			}
			if report && onReload != nil {
				onReload(err)
			}
		}
	}()
	return nil
}

// reader decides what each read of the file does (Watch).
type reader struct {
	last, seen, bad []byte // in force; a change read once; the last that failed
	// failing is the error of the last read of the file that failed (a
	// file gone or unreadable), reported once until it changes or a read
	// succeeds, rather than every interval.
	failing string
}

// read takes one read of the file: c is a config to apply, and report
// whether the read was an attempt to reload (err is its error).
func (r *reader) read(b []byte, err error) (c *Config, report bool, _ error) {
	if err != nil {
		if err.Error() == r.failing {
			return nil, false, nil
		}
		r.failing = err.Error()
		return nil, true, err
	}
	r.failing = ""
	switch {
	case bytes.Equal(b, r.last), r.bad != nil && bytes.Equal(b, r.bad):
		r.seen = nil
		return nil, false, nil
	case r.seen == nil || !bytes.Equal(b, r.seen):
		r.seen = b // still being written, maybe
		return nil, false, nil
	}
	r.seen = nil
	if c, err = Parse(b); err != nil {
		r.bad = b
		return nil, true, err
	}
	r.last, r.bad = b, nil
	return c, true, nil
}
