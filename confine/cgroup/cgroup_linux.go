package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"

	"paddock.dev/paddock/internal/dirs"
)

// Paths and switches tests change.
var (
	// sysfsCgroup is where the hierarchies are mounted.
	sysfsCgroup = "/sys/fs/cgroup"
	// v2Mount, when set, makes the package drive the cgroup v2 hierarchy
	// mounted there whatever the host mode (tests use the unified hierarchy of
	// a hybrid host).
	v2Mount = ""
	// nestUnderSelf puts Parent below the caller's own cgroup in each
	// hierarchy instead of at the root, so groups stay under the caller's
	// accounting (tests run inside the test runner's memory cgroup).
	nestUnderSelf = false
	// procSelfCgroup is read when nesting.
	procSelfCgroup = "/proc/self/cgroup"
)

// Group is one app command's cgroup.
type Group struct {
	name string
	// cgroup v1: the group and its directory in each hierarchy.
	v1     cgroup1.Cgroup
	v1Dirs map[cgroup1.Name]string
	// cgroup v2: the group and its directory.
	v2    *cgroup2.Manager
	v2Dir string
}

// Mode names the host's cgroup layout for messages: "v1", "hybrid", "v2" or
// "none".
func Mode() string {
	switch cgroups.Mode() {
	case cgroups.Legacy:
		return "v1"
	case cgroups.Hybrid:
		return "hybrid"
	case cgroups.Unified:
		return "v2"
	}
	return "none"
}

func useV2() (bool, error) {
	if v2Mount != "" {
		return true, nil
	}
	switch cgroups.Mode() {
	case cgroups.Legacy, cgroups.Hybrid:
		return false, nil
	case cgroups.Unified:
		return true, nil
	}
	return false, fmt.Errorf("cannot confine apps: no cgroup hierarchy is mounted at %s (mount cgroup2 there, or the v1 devices hierarchy)", sysfsCgroup)
}

// Ensure creates the group called name, or updates it, so that it enforces
// spec. It writes nothing that already has the wanted value, so it is cheap to
// call on every launch and safe to run twice.
func Ensure(name string, spec Spec) (*Group, error) {
	if err := validateName(name); err != nil {
		return nil, err
	}
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("cannot set up cgroup %s: %w", name, err)
	}
	v2, err := useV2()
	if err != nil {
		return nil, err
	}
	var g *Group
	if v2 {
		g, err = ensureV2(name, spec)
	} else {
		g, err = ensureV1(name, spec)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot set up cgroup %s: %w", name, err)
	}
	return g, nil
}

// Load returns the existing group called name, or an error wrapping
// os.ErrNotExist.
func Load(name string) (*Group, error) {
	if err := validateName(name); err != nil {
		return nil, err
	}
	v2, err := useV2()
	if err != nil {
		return nil, err
	}
	if v2 {
		return loadV2(name)
	}
	return loadV1(name)
}

// AddProc moves process pid, with all its threads, into the group. The
// launcher moves itself in before it forks or execs the app.
func (g *Group) AddProc(pid int) error {
	var err error
	if g.v2 != nil {
		err = g.v2.AddProc(uint64(pid))
	} else {
		err = g.v1.Add(cgroup1.Process{Pid: pid})
	}
	if err != nil {
		return fmt.Errorf("cannot move process %d into cgroup %s: %w", pid, g.name, err)
	}
	return nil
}

// SetDevices replaces the device allowlist; running processes see the change
// at their next open.
func (g *Group) SetDevices(rules []DeviceRule) error {
	if err := validateRules(rules); err != nil {
		return fmt.Errorf("cannot set devices of cgroup %s: %w", g.name, err)
	}
	var err error
	if g.v2 != nil {
		err = g.setDevicesV2(rules)
	} else {
		err = g.setDevicesV1(rules)
	}
	if err != nil {
		return fmt.Errorf("cannot set devices of cgroup %s: %w", g.name, err)
	}
	return nil
}

// Procs returns the processes in the group, sorted.
func (g *Group) Procs() ([]int, error) {
	var pids []int
	if g.v2 != nil {
		ps, err := g.v2.Procs(false)
		if err != nil {
			return nil, fmt.Errorf("cannot list processes of cgroup %s: %w", g.name, err)
		}
		for _, p := range ps {
			pids = append(pids, int(p))
		}
	} else {
		// A process may have been moved out of one hierarchy only: take the union.
		for n := range g.v1Dirs {
			ps, err := g.v1.Processes(n, false)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("cannot list processes of cgroup %s: %w", g.name, err)
			}
			for _, p := range ps {
				pids = append(pids, p.Pid)
			}
		}
	}
	slices.Sort(pids)
	return slices.Compact(pids), nil
}

// Name returns the group's name.
func (g *Group) Name() string { return g.name }

// Delete removes the group called name. It fails, wrapping ErrBusy and naming
// the processes, while any process is left in it. Deleting a group that does
// not exist succeeds.
func Delete(name string) error {
	g, err := Load(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	pids, err := g.waitEmpty(deleteWait)
	if err != nil {
		return err
	}
	if len(pids) > 0 {
		return fmt.Errorf("cannot delete cgroup %s: %w: %s (stop the app first)", name, ErrBusy, joinInts(pids))
	}
	if g.v2 != nil {
		err = g.v2.Delete()
	} else {
		err = g.v1.Delete()
	}
	if err != nil {
		return fmt.Errorf("cannot delete cgroup %s: %w", name, err)
	}
	// The parent goes with its last group; while others remain, rmdir fails
	// and leaves it.
	var dirs []string
	if g.v2 != nil {
		dirs = []string{g.v2Dir}
	}
	for _, d := range g.v1Dirs {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		os.Remove(filepath.Dir(d))
	}
	return nil
}

// deleteWait is how long Delete waits for processes that are ending (a
// sandbox's init that was killed) to leave the group.
var deleteWait = 2 * time.Second

// waitEmpty returns the processes left in the group once it is empty or
// wait is over.
func (g *Group) waitEmpty(wait time.Duration) ([]int, error) {
	deadline := time.Now().Add(wait)
	for {
		pids, err := g.Procs()
		if err != nil || len(pids) == 0 || time.Now().After(deadline) {
			return pids, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

// readTrim reads a one-line cgroup file.
func readTrim(path string) (string, error) {
	b, err := os.ReadFile(path)
	return strings.TrimSpace(string(b)), err
}

// writeFile writes a cgroup file directly, for values the library cannot
// express (resetting a limit to "max").
func writeFile(path, value string) error {
	return os.WriteFile(path, []byte(value), 0)
}

func pageRound(n int64) int64 {
	p := int64(os.Getpagesize())
	return (n + p - 1) / p * p
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// joinGroup is the group's path below base.
func joinGroup(base, name string) string {
	return filepath.Join("/", base, ParentFor(dirs.Root), name)
}

// ProcsFiles lists the cgroup.procs file of the group in each hierarchy:
// writing a PID to each moves that process into the group. The launcher's
// fast path does so without loading the group.
func (g *Group) ProcsFiles() []string {
	if g.v2 != nil {
		return []string{filepath.Join(g.v2Dir, "cgroup.procs")}
	}
	var out []string
	for _, dir := range g.v1Dirs {
		out = append(out, filepath.Join(dir, "cgroup.procs"))
	}
	sort.Strings(out)
	return out
}
