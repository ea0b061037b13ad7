package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
)

// With -cell-cpuprofile PREFIX, the store's process (etcd, or kine in a
// direct row) and the proxy profile each measured cell on their own, to
// PREFIX-N-CELL-PROCESS.prof (N counting the rows of every round, the
// direct row of a pair first, as logged), so that what etcd does for a
// direct row's puts and for a proxied row's can be compared, and the
// proxy's part of each: the benchmark writes "profile-start FILE" and
// "profile-stop" on the child's stdin around the cell, and the child
// takes them in order.

var cellProfile string

// commands is what a child does with the command lines on its stdin
// (nil: nothing).
var commands struct {
	sync.Mutex
	do func(cmd, arg string)
}

// readCommands passes each line of r to the child's command handler, until
// r ends.
func readCommands(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		commands.Lock()
		if commands.do != nil {
			commands.do(cmd, arg)
		}
		commands.Unlock()
	}
}

// profileOnCommand makes the child take profile-start and profile-stop;
// it returns what stops a profile still running.
func profileOnCommand() (stop func()) {
	var f *os.File
	end := func() {
		if f != nil {
			pprof.StopCPUProfile()
			f.Close()
			f = nil
		}
	}
	commands.Lock()
	commands.do = func(cmd, arg string) {
		switch cmd {
		case "profile-start":
			end()
			var err error
			if f, err = os.Create(arg); err == nil {
				err = pprof.StartCPUProfile(f)
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "profile %s: %v\n", arg, err)
				if f != nil {
					f.Close()
					f = nil
				}
			}
		case "profile-stop":
			end()
		}
	}
	commands.Unlock()
	return func() {
		commands.Lock()
		defer commands.Unlock()
		commands.do = nil
		end()
	}
}

// cellProfiler has the row's server processes profile each cell; nil when
// not profiling.
type cellProfiler struct {
	e    *env
	rows int // rows so far
}

func (e *env) cellProfiles() *cellProfiler {
	if cellProfile == "" {
		return nil
	}
	return &cellProfiler{e: e}
}

// around returns measure's hook for the cells of row, direct or not (nil:
// none).
func (p *cellProfiler) around(row string, direct bool) func(cell string, f func()) {
	if p == nil {
		return nil
	}
	p.rows++
	n := p.rows
	procs := map[string]*child{}
	proxy, store := p.e.servers(!direct)
	if proxy != nil {
		procs["proxy"] = proxy
	}
	if store != nil {
		procs["store"] = store
	}
	return func(cell string, f func()) {
		var files []string
		for name, c := range procs {
			file := fmt.Sprintf("%s-%d-%s-%s.prof", cellProfile, n, cell, name)
			if _, err := fmt.Fprintf(c.stdin, "profile-start %s\n", file); err != nil {
				fmt.Fprintf(os.Stderr, "profile of %s, %s, %s: %v\n", row, cell, name, err)
				continue
			}
			files = append(files, file)
		}
		f()
		for _, c := range procs {
			_, _ = fmt.Fprintln(c.stdin, "profile-stop")
		}
		fmt.Fprintf(os.Stderr, "profiles of %s, %s: %s\n", row, cell, strings.Join(files, " "))
	}
}
