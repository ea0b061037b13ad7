package embedetcd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// childEnv, set in a child's environment, names its data directory.
const childEnv = "KPLEX_EMBEDETCD_CHILD_DIR"

const urlPrefix = "embedetcd-url: "

// ServeIfChild serves etcd and exits when this process is a child started
// by StartChild; otherwise it returns at once. A test package that uses
// StartChild calls it first thing in its TestMain.
func ServeIfChild() {
	dir := os.Getenv(childEnv)
	if dir == "" {
		return
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	url, stop, err := Start(dir, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(urlPrefix + url)
	<-ctx.Done()
	stop()
	os.Exit(0)
}

// StartChild is Start (plain http) in a child process, this executable run
// again, so that etcd's memory and goroutines are not the caller's: for
// tests that measure their own heap. The child dies with the caller. It
// returns the client URL and a stop function that waits for the child.
func StartChild(dir string) (string, func(), error) {
	if os.Getenv(childEnv) != "" {
		return "", nil, errors.New("etcd child: this process is a child itself; its TestMain must call ServeIfChild first")
	}
	exe, err := os.Executable()
	if err != nil {
		return "", nil, fmt.Errorf("etcd child: %w", err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, fmt.Errorf("etcd child: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("etcd child: %w", err)
	}
	exited := make(chan struct{})
	var waitErr error
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), urlPrefix); ok {
				urls <- u
			}
		}
	}()
	go func() { waitErr = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	select {
	case u := <-urls:
		return u, stop, nil
	case <-exited:
		return "", nil, fmt.Errorf("etcd child exited before it was ready (%v); does the caller's TestMain call ServeIfChild?", waitErr)
	case <-time.After(90 * time.Second):
		stop()
		return "", nil, errors.New("etcd child not ready after 90s")
	}
}
