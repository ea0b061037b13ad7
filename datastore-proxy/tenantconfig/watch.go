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
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			b, err := os.ReadFile(path)
			if err == nil && bytes.Equal(b, last) {
				continue
			}
			if err == nil {
				var c *Config
				if c, err = Parse(b); err == nil {
					s.Set(c)
					last = b
					log.Info("tenant config reloaded", "path", path, "tenants", len(c.Tenants))
				}
			}
			if err != nil {
				log.Error("tenant config not reloaded; keeping the last good one", "path", path, "err", err)
			}
			if onReload != nil {
				onReload(err)
			}
		}
	}()
	return nil
}
