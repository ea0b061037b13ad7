package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// child is a server of the benchmark in its own process (serve.go).
type child struct {
	name     string
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	stderr   *bytes.Buffer
	endpoint string
}

// spawn starts this binary as a child server and waits until it serves;
// with pin >= 0, the child runs on that CPU only.
func spawn(name string, pin int, args ...string) (*child, error) {
	return spawnWith(name, pin, 0, nil, args...)
}

// spawnWith is spawn with the child at niceness nice (0: as this process)
// and with env (NAME=value) added to this process's environment.
func spawnWith(name string, pin, nice int, env []string, args ...string) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, args...)
	if nice != 0 {
		cmd = exec.Command("nice", append([]string{"-n", strconv.Itoa(nice), self}, args...)...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if pin >= 0 {
		env = append(env, "KPLEX_BENCH_PIN="+strconv.Itoa(pin))
	}
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c := &child{name: name, cmd: cmd, stdin: stdin, stderr: &bytes.Buffer{}}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	found := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if ep, ok := strings.CutPrefix(sc.Text(), endpointPrefix); ok && c.endpoint == "" {
				c.endpoint = ep
				found <- nil
			}
		}
		found <- fmt.Errorf("%s exited before serving: %s", name, tail(c.stderr.String()))
	}()
	select {
	case err := <-found:
		if err != nil {
			_ = cmd.Wait()
			return nil, err
		}
		return c, nil
	case <-time.After(90 * time.Second):
		c.stop()
		return nil, fmt.Errorf("%s did not serve within 90s: %s", name, tail(c.stderr.String()))
	}
}

// stop closes the child's stdin (its signal to stop) and waits for it to
// exit, killing it after 10 s.
func (c *child) stop() {
	_ = c.stdin.Close()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

func tail(s string) string {
	if len(s) > 2000 {
		s = "..." + s[len(s)-2000:]
	}
	return strings.TrimSpace(s)
}

func (c *child) pid() int { return c.cmd.Process.Pid }
