package localenv

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"kplex.dev/cli/supervise"
)

// TestStartRetriesAProcessThatExitsBeforeReady: a component with
// startRetries is started again when it dies before it is ready, and the
// progress says so; one without retries, or out of them, fails with the
// exit and its log tail.
func TestStartRetriesAProcessThatExitsBeforeReady(t *testing.T) {
	for _, tc := range []struct {
		name      string
		crashes   int  // times the process dies at start before it stays up
		atOnce    bool // it dies at once, maybe before its pid file is written
		retries   int
		wantErr   bool
		wantStart int
	}{
		{name: "no crash", crashes: 0, retries: 0, wantStart: 1},
		{name: "crash without retries", crashes: 1, retries: 0, wantErr: true, wantStart: 1},
		{name: "crash then up", crashes: 1, retries: 2, wantStart: 2},
		{name: "crashes past the retries", crashes: 3, retries: 2, wantErr: true, wantStart: 3},
		{name: "dies at once then up", crashes: 2, atOnce: true, retries: 2, wantStart: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var progress bytes.Buffer
			e := &env{opts: Options{Progress: &progress, DieWithParent: true}, layout: Layout{Root: dir}}
			t.Cleanup(func() { _ = supervise.Stop(e.layout.Pid("flaky"), time.Second) })
			counter, upMark := filepath.Join(dir, "starts"), filepath.Join(dir, "up")
			// Each start appends a line to counter; the first `crashes`
			// starts exit 3 after a moment, a later one marks itself up
			// and stays.
			pause := "sleep 0.2; "
			if tc.atOnce {
				pause = ""
			}
			script := `echo x >> "$1"; if [ $(wc -l < "$1") -le ` + strconv.Itoa(tc.crashes) + ` ]; then ` + pause + `echo "boom"; exit 3; fi; touch "$2"; exec sleep 60`
			c := component{
				name: "flaky",
				command: func() (string, []string, []string, error) {
					return "/bin/sh", []string{"-c", script, "sh", counter, upMark}, nil, nil
				},
				ready: func(context.Context) error {
					if _, err := os.Stat(upMark); err != nil {
						return errors.New("not up yet")
					}
					return nil
				},
				readyTimeout: 10 * time.Second,
				startRetries: tc.retries,
			}
			err := e.start(context.Background(), c)
			if (err != nil) != tc.wantErr {
				t.Fatalf("start: %v; want error %v; progress:\n%s", err, tc.wantErr, progress.String())
			}
			if err != nil && (!strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "boom")) {
				t.Errorf("error %q does not give the exit status and the log's last lines", err)
			}
			data, _ := os.ReadFile(counter)
			if got := strings.Count(string(data), "x"); got != tc.wantStart {
				t.Errorf("started %d times; want %d; progress:\n%s", got, tc.wantStart, progress.String())
			}
			if retried := strings.Count(progress.String(), "starting it again"); retried != tc.wantStart-1 {
				t.Errorf("progress tells of %d restarts; want %d:\n%s", retried, tc.wantStart-1, progress.String())
			}
		})
	}
}
