// Package supervise starts, identifies and stops the long-running processes
// of a local environment.
//
// The contract: a process is started detached from the caller's terminal
// (its own session) with stdout and stderr appended to its log file, and a
// pid file records its pid and kernel start time. Identity is the pair: a pid
// file whose pid now belongs to another process (pid reuse after a crash or
// reboot) is stale, never a reason to signal that process. Stop sends SIGTERM,
// waits up to a grace period, then SIGKILLs the process and its process
// group, and removes the pid file.
package supervise
