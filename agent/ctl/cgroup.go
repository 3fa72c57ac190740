package ctl

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
)

// procDir is where the processes' cgroups are read; tests swap it.
var procDir = "/proc"

// checkCgroup checks that process pid is in one of the sandbox groups of
// app, paddock.APP.CMD under parent: in the devices hierarchy (cgroup v1
// and hybrid), or the unified one (v2). A process of the app's user
// outside its sandboxes (a launcher that has not joined yet, a process
// that left) is refused.
func checkCgroup(pid int32, app, parent string) error {
	if pid <= 0 {
		return errors.New("cannot tell which process connects to the in-app socket")
	}
	f, err := os.Open(procDir + "/" + strconv.Itoa(int(pid)) + "/cgroup")
	if err != nil {
		return fmt.Errorf("cannot read the cgroup of process %d: %w", pid, err)
	}
	defer f.Close()
	group := groupOf(f)
	if path.Base(path.Dir(group)) != parent || !strings.HasPrefix(path.Base(group), "paddock."+app+".") {
		return fmt.Errorf("paddock ctl speaks for an app, from inside its sandbox: process %d of %s's user is not in one of %s's sandboxes (it is in cgroup %q)", pid, app, app, group)
	}
	return nil
}

// groupOf reads a /proc/PID/cgroup file and returns the process's group
// in the devices hierarchy (cgroup v1 and hybrid), or else in the unified
// one (v2); "" when it has neither.
func groupOf(r io.Reader) string {
	var devices, unified string
	sc := bufio.NewScanner(io.LimitReader(r, 64<<10))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			unified = parts[2]
		case containsWord(parts[1], "devices"):
			devices = parts[2]
		}
	}
	if devices != "" {
		return devices
	}
	return unified
}

func containsWord(list, w string) bool {
	for _, s := range strings.Split(list, ",") {
		if s == w {
			return true
		}
	}
	return false
}
