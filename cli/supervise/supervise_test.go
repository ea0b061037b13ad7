package supervise

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	rest := " 1 1 1 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 424242 1000 100"
	tests := []struct {
		name      string
		in        string
		wantState byte
		wantStart uint64
		wantErr   bool
	}{
		{name: "plain", in: "123 (sleep) S" + rest, wantState: 'S', wantStart: 424242},
		{name: "spaces and parens in comm", in: "123 (a b) (c)) Z" + rest, wantState: 'Z', wantStart: 424242},
		{name: "no paren", in: "123 sleep S" + rest, wantErr: true},
		{name: "truncated", in: "123 (sleep) S 1 1", wantErr: true},
		{name: "bad starttime", in: "123 (x) S 1 1 1 0 -1 4 1 0 0 0 5 3 0 0 20 0 1 0 nope 1 1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && (got.State != tt.wantState || got.StartTime != tt.wantStart) {
				t.Fatalf("got %+v, want state %c start %d", got, tt.wantState, tt.wantStart)
			}
		})
	}
}

func spec(t *testing.T, name string, path string, args ...string) Spec {
	dir := t.TempDir()
	return Spec{
		Name: name, Path: path, Args: args, DieWithParent: true,
		LogPath: filepath.Join(dir, "logs", name+".log"),
		PidPath: filepath.Join(dir, "run", name+".pid"),
	}
}

func TestStartInspectStop(t *testing.T) {
	s := spec(t, "sleeper", "/bin/sh", "-c", "echo hello from child; exec sleep 60")
	p, err := Start(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Stop(s.PidPath, time.Second) })

	state, pf, err := Inspect(s.PidPath)
	if err != nil || state != Running || pf.PID != p.PID {
		t.Fatalf("Inspect = %v %+v %v, want running pid %d", state, pf, err, p.PID)
	}
	if _, err := Start(s); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Fatalf("second Start err = %v, want already running", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(Tail(s.LogPath, 5), "hello from child") {
		if time.Now().After(deadline) {
			t.Fatalf("log never got the child's output: %q", Tail(s.LogPath, 5))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := Stop(s.PidPath, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Exited():
	case <-time.After(5 * time.Second):
		t.Fatal("process did not exit after Stop")
	}
	if state, _, _ := Inspect(s.PidPath); state != Absent {
		t.Fatalf("after Stop state = %v, want absent", state)
	}
}

func TestStopEscalatesToKill(t *testing.T) {
	s := spec(t, "stubborn", "/bin/sh", "-c", `trap "" TERM; echo ready; while :; do sleep 0.1; done`)
	p, err := Start(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Stop(s.PidPath, 0) })
	for !strings.Contains(Tail(s.LogPath, 2), "ready") {
		time.Sleep(20 * time.Millisecond)
	}
	start := time.Now()
	if err := Stop(s.PidPath, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Fatalf("Stop returned after %v: SIGTERM should have been ignored", el)
	}
	select {
	case <-p.Exited():
	case <-time.After(5 * time.Second):
		t.Fatal("SIGKILL did not end the process")
	}
}

func TestStalePidFileIsNeverSignalled(t *testing.T) {
	dir := t.TempDir()
	pidPath := filepath.Join(dir, "x.pid")
	// Our own pid with a wrong start time: a reused pid.
	self, err := readStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if err := (PidFile{PID: os.Getpid(), StartTime: self.StartTime + 1}).write(pidPath); err != nil {
		t.Fatal(err)
	}
	if state, _, _ := Inspect(pidPath); state != Stale {
		t.Fatalf("state = %v, want stale", state)
	}
	if err := Stop(pidPath, time.Second); err != nil { // would kill this test if it signalled
		t.Fatal(err)
	}
	if _, err := os.Stat(pidPath); !os.IsNotExist(err) {
		t.Fatalf("stale pid file not removed: %v", err)
	}
	// Garbage pid file: stale, removable.
	if err := os.WriteFile(pidPath, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if state, _, err := Inspect(pidPath); state != Stale || err == nil {
		t.Fatalf("garbage pid file: state %v err %v, want stale with error", state, err)
	}
}

func TestExitedProcessIsReaped(t *testing.T) {
	s := spec(t, "quitter", "/bin/sh", "-c", "sleep 0.2; echo bye; exit 3")
	p, err := Start(s)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Exited():
	case <-time.After(5 * time.Second):
		t.Fatal("never exited")
	}
	if p.ExitErr() == nil || !strings.Contains(p.ExitErr().Error(), "exit status 3") {
		t.Fatalf("ExitErr = %v, want exit status 3", p.ExitErr())
	}
	if state, _, _ := Inspect(s.PidPath); state != Stale {
		t.Fatalf("state after exit = %v, want stale", state)
	}
}

func TestStartMissingBinary(t *testing.T) {
	s := spec(t, "ghost", "/nonexistent/binary")
	if _, err := Start(s); err == nil || !strings.Contains(err.Error(), "ghost") {
		t.Fatalf("err = %v, want an error naming the process", err)
	}
}

func TestTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	var b strings.Builder
	for i := 1; i <= 10; i++ {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, want := Tail(path, 3), "line 8\nline 9\nline 10"; got != want {
		t.Fatalf("Tail = %q, want %q", got, want)
	}
	if got := Tail(filepath.Join(t.TempDir(), "missing"), 3); !strings.Contains(got, "no log") {
		t.Fatalf("Tail of missing file = %q", got)
	}
}
