package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/containerd/cgroups/v3/cgroup1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// v1Controllers are the hierarchies a group lives in on v1 and hybrid hosts.
var v1Controllers = []cgroup1.Name{cgroup1.Devices, cgroup1.Memory, cgroup1.Pids, cgroup1.Cpu}

// v1Mounted reports which of v1Controllers are mounted; checked once.
var v1Mounted = sync.OnceValue(func() map[cgroup1.Name]bool {
	m := map[cgroup1.Name]bool{}
	for _, n := range v1Controllers {
		var st unix.Statfs_t
		if err := unix.Statfs(filepath.Join(sysfsCgroup, string(n)), &st); err == nil && st.Type == unix.CGROUP_SUPER_MAGIC {
			m[n] = true
		}
	}
	return m
})

// v1Subsystems returns the library's controllers for the mounted hierarchies.
func v1Subsystems() ([]cgroup1.Subsystem, error) {
	mounted := v1Mounted()
	if !mounted[cgroup1.Devices] {
		return nil, fmt.Errorf("the v1 devices hierarchy is not mounted at %s (the device allowlist cannot be turned off)", filepath.Join(sysfsCgroup, "devices"))
	}
	var subs []cgroup1.Subsystem
	for _, n := range v1Controllers {
		if !mounted[n] {
			continue
		}
		switch n {
		case cgroup1.Devices:
			subs = append(subs, cgroup1.NewDevices(sysfsCgroup))
		case cgroup1.Memory:
			subs = append(subs, cgroup1.NewMemory(sysfsCgroup))
		case cgroup1.Pids:
			subs = append(subs, cgroup1.NewPids(sysfsCgroup))
		case cgroup1.Cpu:
			subs = append(subs, cgroup1.NewCpu(sysfsCgroup))
		}
	}
	return subs, nil
}

// v1Paths returns the group's path in each hierarchy, relative to its mount.
func v1Paths(name string) (map[cgroup1.Name]string, error) {
	base := map[string]string{}
	if nestUnderSelf {
		var err error
		if base, err = cgroup1.ParseCgroupFile(procSelfCgroup); err != nil {
			return nil, err
		}
	}
	paths := map[cgroup1.Name]string{}
	for n := range v1Mounted() {
		paths[n] = joinGroup(base[string(n)], name)
	}
	return paths, nil
}

func v1Group(name string, load bool) (*Group, error) {
	subs, err := v1Subsystems()
	if err != nil {
		return nil, err
	}
	paths, err := v1Paths(name)
	if err != nil {
		return nil, err
	}
	path := func(n cgroup1.Name) (string, error) { return paths[n], nil }
	hier := cgroup1.WithHierarchy(func() ([]cgroup1.Subsystem, error) { return subs, nil })
	var cg cgroup1.Cgroup
	if load {
		cg, err = cgroup1.Load(path, hier)
		if errors.Is(err, cgroup1.ErrCgroupDeleted) {
			return nil, fmt.Errorf("cgroup %s: %w", name, os.ErrNotExist)
		}
	} else {
		// No resources: this only creates the directories; reconciling below
		// writes only what differs.
		cg, err = cgroup1.New(path, &specs.LinuxResources{}, hier)
	}
	if err != nil {
		return nil, err
	}
	g := &Group{name: name, v1: cg, v1Dirs: map[cgroup1.Name]string{}}
	for n, p := range paths {
		g.v1Dirs[n] = filepath.Join(sysfsCgroup, string(n), p)
	}
	return g, nil
}

func loadV1(name string) (*Group, error) { return v1Group(name, true) }

func ensureV1(name string, spec Spec) (*Group, error) {
	for n, want := range map[cgroup1.Name]bool{cgroup1.Memory: spec.MemoryMax > 0, cgroup1.Pids: spec.PidsMax > 0, cgroup1.Cpu: spec.CPUPercent > 0} {
		if want && !v1Mounted()[n] {
			return nil, fmt.Errorf("cannot limit %s: the v1 %s hierarchy is not mounted at %s", n, n, sysfsCgroup)
		}
	}
	g, err := v1Group(name, false)
	if err != nil {
		return nil, err
	}
	if err := g.setDevicesV1(spec.Devices); err != nil {
		return nil, err
	}
	for _, set := range []func(Spec) error{g.setMemoryV1, g.setPidsV1, g.setCPUV1} {
		if err := set(spec); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// setDevicesV1 writes the difference between devices.list and rules, allows
// before denies, so a running app never loses a device it keeps.
func (g *Group) setDevicesV1(rules []DeviceRule) error {
	list := filepath.Join(g.v1Dirs[cgroup1.Devices], "devices.list")
	want := toSet(rules)
	cur, err := readDevices(list)
	if err != nil {
		return err
	}
	if cur.equal(want) {
		return nil
	}
	var devs []specs.LinuxDeviceCgroup
	for _, w := range diffSets(cur, want) {
		devs = append(devs, specSpecRule(w.rule, w.allow))
	}
	if err := g.v1.Update(&specs.LinuxResources{Devices: devs}); err != nil {
		return err
	}
	if cur, err = readDevices(list); err != nil {
		return err
	}
	if !cur.equal(want) {
		return fmt.Errorf("internal error: %s is %v after update, want %v", list, cur.rules(), want.rules())
	}
	return nil
}

func readDevices(path string) (devSet, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseDevicesList(string(b))
}

// specSpecRule converts a rule to the runtime-spec form both libraries take;
// Major and Minor are always set (cgroup2 dereferences them).
func specSpecRule(r DeviceRule, allow bool) specs.LinuxDeviceCgroup {
	major, minor := r.Major, r.Minor
	return specs.LinuxDeviceCgroup{Allow: allow, Type: string(r.Type), Major: &major, Minor: &minor, Access: r.Access}
}

// v1Unlimited is the smallest value v1 memory files show for "no limit".
const v1Unlimited = 1 << 62

func (g *Group) setMemoryV1(spec Spec) error {
	dir, ok := g.v1Dirs[cgroup1.Memory]
	if !ok {
		return nil
	}
	limit, err := readInt(filepath.Join(dir, "memory.limit_in_bytes"))
	if err != nil {
		return err
	}
	swapFile := filepath.Join(dir, "memory.memsw.limit_in_bytes")
	hasSwap := exists(swapFile)
	swap := limit
	if hasSwap {
		if swap, err = readInt(swapFile); err != nil {
			return err
		}
	}
	want := int64(-1)
	if spec.MemoryMax > 0 {
		want = pageRound(spec.MemoryMax)
	}
	same := func(v int64) bool { return v == want || (want < 0 && v >= v1Unlimited) }
	if same(limit) && same(swap) {
		return nil
	}
	// memsw must never be below the limit: raise it first, lower it last.
	// Equal values keep the app off swap, so swap cannot hide an overrun.
	setLimit := &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &want}}
	setSwap := &specs.LinuxResources{Memory: &specs.LinuxMemory{Swap: &want}}
	steps := []*specs.LinuxResources{setLimit}
	if hasSwap {
		if want < 0 || want > limit {
			steps = []*specs.LinuxResources{setSwap, setLimit}
		} else {
			steps = append(steps, setSwap)
		}
	}
	for _, r := range steps {
		if err := g.v1.Update(r); err != nil {
			return err
		}
	}
	return nil
}

func (g *Group) setPidsV1(spec Spec) error {
	dir, ok := g.v1Dirs[cgroup1.Pids]
	if !ok {
		return nil
	}
	file := filepath.Join(dir, "pids.max")
	cur, err := readTrim(file)
	if err != nil {
		return err
	}
	if spec.PidsMax == 0 {
		if cur == "max" {
			return nil
		}
		return writeFile(file, "max") // the library only writes limits > 0
	}
	if cur == strconv.FormatInt(spec.PidsMax, 10) {
		return nil
	}
	return g.v1.Update(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &spec.PidsMax}})
}

// cfsPeriod is the CPU quota period in microseconds (the kernel default).
const cfsPeriod = 100000

func (g *Group) setCPUV1(spec Spec) error {
	dir, ok := g.v1Dirs[cgroup1.Cpu]
	if !ok {
		return nil
	}
	quota, err := readInt(filepath.Join(dir, "cpu.cfs_quota_us"))
	if err != nil {
		return err
	}
	period, err := readInt(filepath.Join(dir, "cpu.cfs_period_us"))
	if err != nil {
		return err
	}
	want := cpuQuota(spec)
	if quota == want && (want < 0 || period == cfsPeriod) {
		return nil
	}
	p := uint64(cfsPeriod)
	return g.v1.Update(&specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: &want, Period: &p}})
}

// cpuQuota is the quota per cfsPeriod for spec, or -1 for none.
func cpuQuota(spec Spec) int64 {
	if spec.CPUPercent == 0 {
		return -1
	}
	return int64(spec.CPUPercent) * cfsPeriod / 100
}

func readInt(path string) (int64, error) {
	s, err := readTrim(path)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cannot parse %s: %w", path, err)
	}
	return n, nil
}
