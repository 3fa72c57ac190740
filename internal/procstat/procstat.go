// Package procstat reads what the kernel says of a process in
// /proc/PID/stat. Its start time, with its pid, names one process over
// time: a pid that a later process reuses comes with another start time,
// so the agent and the launcher tell their own processes from strangers.
package procstat

import (
	"bytes"
	"os"
	"strconv"
	"strings"
)

// StartTime returns the start time of process pid (field 22 of
// /proc/PID/stat, in clock ticks after boot, as the kernel writes it), or
// "" when there is no such process or it has ended: a zombie that its
// parent has not reaped yet has ended (an init that ended has left its
// namespaces).
func StartTime(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	return ParseStartTime(b)
}

// ParseStartTime returns the start time in the contents of a
// /proc/PID/stat file, or "" when the process has ended or the contents
// are not such a file's. The command name, field 2, is in parentheses and
// may hold spaces and parentheses itself: the fields after it are counted
// from the last ')'.
func ParseStartTime(stat []byte) string {
	f := liveFields(stat)
	if f == nil {
		return ""
	}
	return f[19]
}

// Parent returns the parent of process pid (field 4 of /proc/PID/stat),
// or 0 when there is no such process or it has ended.
func Parent(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	f := liveFields(b)
	if f == nil {
		return 0
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return 0
	}
	return ppid
}

// liveFields returns the fields of a /proc/PID/stat file from field 3
// (the state) on, or nil when the process has ended or the contents are
// not such a file's.
func liveFields(stat []byte) []string {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return nil
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return nil
	}
	return f
}
