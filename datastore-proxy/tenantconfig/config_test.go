package tenantconfig

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, in, wantErr string
		tenant            string
		want              Limits
	}{
		{"defaults inherited", "defaults: {maxKeys: 10, burst: 5}\ntenants:\n  a: {maxBytes: 100}\n", "", "a", Limits{MaxKeys: 10, MaxBytes: 100, Burst: 5}},
		{"override", "defaults: {maxKeys: 10}\ntenants:\n  a: {maxKeys: 3}\n", "", "a", Limits{MaxKeys: 3}},
		{"unknown tenant gets defaults", "defaults: {requestsPerSecond: 50}\n", "", "zzz", Limits{RequestsPerSecond: 50}},
		{"json", `{"defaults":{"maxKeys":7}}`, "", "x", Limits{MaxKeys: 7}},
		{"negative", "defaults: {maxKeys: -1}\n", "defaults.maxKeys -1", "", Limits{}},
		{"negative tenant", "tenants:\n  a: {burst: -2}\n", "tenants.a.burst", "", Limits{}},
		{"watches inherited", "defaults: {maxWatches: 500}\ntenants:\n  a: {maxKeys: 1}\n", "", "a", Limits{MaxKeys: 1, MaxWatches: 500}},
		{"watches override", "defaults: {maxWatches: 500}\ntenants:\n  a: {maxWatches: 20}\n", "", "a", Limits{MaxWatches: 20}},
		{"rate past the bound", "defaults: {requestsPerSecond: 1e19}\n", "defaults.requestsPerSecond 1e+19: at most", "", Limits{}},
		{"rate at the bound", "defaults: {requestsPerSecond: 1e9}\n", "", "a", Limits{RequestsPerSecond: 1e9}},
		{"negative watches", "tenants:\n  a: {maxWatches: -1}\n", "tenants.a.maxWatches -1", "", Limits{}},
		{"bad tenant name", "tenants:\n  Bad_Name: {maxKeys: 1}\n", "tenants.Bad_Name", "", Limits{}},
		{"unknown field", "defaults: {maxKey: 1}\n", "unknown field", "", Limits{}},
		{"not yaml", "defaults: [", "tenant config", "", Limits{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.For(tt.tenant); got != tt.want {
				t.Fatalf("For(%s) = %+v, want %+v", tt.tenant, got, tt.want)
			}
		})
	}
}

func TestWatchReloadsAndKeepsLastGood(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tenants.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("tenants:\n  a: {maxKeys: 1}\n")
	var s Store
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reloads := make(chan error, 10)
	if err := s.Watch(ctx, path, 20*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)), func(err error) { reloads <- err }); err != nil {
		t.Fatal(err)
	}
	if s.For("a").MaxKeys != 1 {
		t.Fatalf("initial load: %+v", s.For("a"))
	}
	write("tenants:\n  a: {maxKeys: 2}\n")
	if err := <-reloads; err != nil || s.For("a").MaxKeys != 2 {
		t.Fatalf("reload: err %v, limits %+v", err, s.For("a"))
	}
	write("tenants:\n  a: {maxKeys: -5}\n")
	if err := <-reloads; err == nil || s.For("a").MaxKeys != 2 {
		t.Fatalf("bad file: err %v, limits %+v (want the last good config kept)", err, s.For("a"))
	}
}

// A file rewritten in place can be read half written, and half a config
// often parses: a change is applied only once it reads the same twice in
// a row, an interval apart, so the half is never in force (it was, until
// the next read: here a default of 5 keys, where the file says 500). An
// empty file is refused, and a file that stays broken is reported once.
func TestAChangeIsAppliedOnceItReadsTheSameTwice(t *testing.T) {
	full := "defaults:\n  maxKeys: 500\n"
	half := full[:len("defaults:\n  maxKeys: 5")] // parses: a default of 5
	type want struct {
		maxKeys int64 // applied; 0: nothing
		report  bool
		err     bool
	}
	steps := []struct {
		read string
		want want
	}{
		{half, want{}},                 // being written, maybe
		{full, want{}},                 // changed since: being written, maybe
		{full, want{500, true, false}}, // the same twice: applied
		{full, want{}},                 // in force
		{"", want{}},                   // read once
		{"", want{0, true, true}},      // empty: refused
		{"", want{}},                   // reported once
		{"", want{}},
		{"{}", want{}},
		{"{}", want{0, true, false}}, // no limits
	}
	r := reader{last: []byte("defaults:\n  maxKeys: 50\n")}
	for i, st := range steps {
		c, report, err := r.read([]byte(st.read), nil)
		var maxKeys int64
		if c != nil && st.read != "{}" {
			maxKeys = c.For("zeta").MaxKeys
		}
		if got := (want{maxKeys, report, err != nil}); got != st.want || st.read == "{}" && st.want.report && c == nil {
			t.Fatalf("read %d (%q): applied %v (max keys %d), report %v, err %v; want %+v", i, st.read, c != nil, maxKeys, report, err, st.want)
		}
	}
}

// A file that cannot be read (gone, unreadable) is reported once, not at
// every interval, and again if it fails otherwise or after a read that
// worked.
func TestAnUnreadableFileIsReportedOnce(t *testing.T) {
	gone, denied := errors.New("open tenants.yaml: no such file or directory"), errors.New("open tenants.yaml: permission denied")
	in := []byte("defaults:\n  maxKeys: 50\n")
	r := reader{last: in}
	for i, st := range []struct {
		err    error
		report bool
	}{
		{gone, true}, {gone, false}, {gone, false}, {denied, true}, {denied, false}, {nil, false}, {gone, true},
	} {
		var b []byte
		if st.err == nil {
			b = in
		}
		_, report, err := r.read(b, st.err)
		if report != st.report || (err != nil) != st.report {
			t.Fatalf("read %d (%v): report %v, err %v; want report %v", i, st.err, report, err, st.report)
		}
	}
}
