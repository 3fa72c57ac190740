package cgroup

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func v2Mountpoint() string {
	if v2Mount != "" {
		return v2Mount
	}
	return sysfsCgroup
}

// v2Group returns the group's path relative to the mount.
func v2Group(name string) (string, error) {
	base := ""
	if nestUnderSelf {
		_, unified, err := cgroups.ParseCgroupFileUnified(procSelfCgroup)
		if err != nil {
			return "", err
		}
		base = unified
	}
	return joinGroup(base, name), nil
}

func loadV2(name string) (*Group, error) {
	group, err := v2Group(name)
	if err != nil {
		return nil, err
	}
	mount := v2Mountpoint()
	dir := filepath.Join(mount, group)
	if !exists(dir) {
		return nil, fmt.Errorf("cgroup %s: %w", name, os.ErrNotExist)
	}
	m, err := cgroup2.Load(group, cgroup2.WithMountpoint(mount))
	if err != nil {
		return nil, err
	}
	return &Group{name: name, v2: m, v2Dir: dir}, nil
}

// v2Controllers are the controllers spec needs.
func v2Controllers(spec Spec) []string {
	var c []string
	if spec.MemoryMax > 0 {
		c = append(c, "memory")
	}
	if spec.PidsMax > 0 {
		c = append(c, "pids")
	}
	if spec.CPUPercent > 0 {
		c = append(c, "cpu")
	}
	return c
}

func ensureV2(name string, spec Spec) (*Group, error) {
	group, err := v2Group(name)
	if err != nil {
		return nil, err
	}
	mount := v2Mountpoint()
	dir := filepath.Join(mount, group)
	need := v2Controllers(spec)
	if len(need) > 0 {
		avail, err := readTrim(filepath.Join(mount, "cgroup.controllers"))
		if err != nil {
			return nil, err
		}
		for _, c := range need {
			if !slices.Contains(strings.Fields(avail), c) {
				return nil, fmt.Errorf("cannot limit %s: the %s controller is not available in the cgroup v2 hierarchy at %s", c, c, mount)
			}
		}
	}
	if !exists(dir) {
		// First launch: the library creates the group, enables the
		// controllers on its parents, sets the limits and attaches the
		// device program.
		res := &cgroup2.Resources{Devices: v2Rules(spec.Devices)}
		setV2Limits(res, spec)
		m, err := cgroup2.NewManager(mount, group, res)
		if err != nil {
			return nil, err
		}
		return &Group{name: name, v2: m, v2Dir: dir}, nil
	}
	g, err := loadV2(name)
	if err != nil {
		return nil, err
	}
	if err := g.enableV2(need); err != nil {
		return nil, err
	}
	if err := g.setLimitsV2(spec); err != nil {
		return nil, err
	}
	if err := g.setDevicesV2(spec.Devices); err != nil {
		return nil, err
	}
	return g, nil
}

// enableV2 enables controllers on the parents unless the parent already has them.
func (g *Group) enableV2(need []string) error {
	if len(need) == 0 {
		return nil
	}
	on, err := readTrim(filepath.Join(filepath.Dir(g.v2Dir), "cgroup.subtree_control"))
	if err != nil {
		return err
	}
	for _, c := range need {
		if !slices.Contains(strings.Fields(on), c) {
			return g.v2.ToggleControllers(need, cgroup2.Enable)
		}
	}
	return nil
}

func setV2Limits(res *cgroup2.Resources, spec Spec) {
	if spec.MemoryMax > 0 {
		max, noSwap := pageRound(spec.MemoryMax), int64(0)
		res.Memory = &cgroup2.Memory{Max: &max, Swap: &noSwap}
	}
	if spec.PidsMax > 0 {
		res.Pids = &cgroup2.Pids{Max: spec.PidsMax}
	}
	if q := cpuQuota(spec); q > 0 {
		p := uint64(cfsPeriod)
		res.CPU = &cgroup2.CPU{Max: cgroup2.NewCPUMax(&q, &p)}
	}
}

// setLimitsV2 writes the limit files that differ. Limits that go away are
// reset to "max" directly: the library cannot express that for memory.
func (g *Group) setLimitsV2(spec Spec) error {
	want := map[string]string{"memory.max": "max", "memory.swap.max": "max", "pids.max": "max", "cpu.max": "max " + strconv.Itoa(cfsPeriod)}
	if spec.MemoryMax > 0 {
		want["memory.max"] = strconv.FormatInt(pageRound(spec.MemoryMax), 10)
		want["memory.swap.max"] = "0"
	}
	if spec.PidsMax > 0 {
		want["pids.max"] = strconv.FormatInt(spec.PidsMax, 10)
	}
	if q := cpuQuota(spec); q > 0 {
		want["cpu.max"] = strconv.FormatInt(q, 10) + " " + strconv.Itoa(cfsPeriod)
	}
	for _, file := range []string{"memory.swap.max", "memory.max", "pids.max", "cpu.max"} {
		cur, err := readTrim(filepath.Join(g.v2Dir, file))
		if errors.Is(err, os.ErrNotExist) {
			continue // controller not enabled here, so nothing is limited
		}
		if err != nil {
			return err
		}
		if cur == want[file] {
			continue
		}
		if err := writeFile(filepath.Join(g.v2Dir, file), want[file]); err != nil {
			return fmt.Errorf("cannot write %s: %w", file, err)
		}
	}
	return nil
}

// v2Rules converts rules for cgroup2's eBPF filter generator. An empty list
// would attach no program at all, so it becomes a rule that matches nothing.
func v2Rules(rules []DeviceRule) []specs.LinuxDeviceCgroup {
	if len(rules) == 0 {
		zero := int64(0)
		return []specs.LinuxDeviceCgroup{{Allow: true, Type: "c", Major: &zero, Minor: &zero, Access: ""}}
	}
	out := make([]specs.LinuxDeviceCgroup, len(rules))
	for i, r := range rules {
		out[i] = specSpecRule(r, true)
	}
	return out
}

// setDevicesV2 replaces the group's device program. cgroup2 attaches with
// BPF_F_ALLOW_MULTI and never detaches, and attached programs all have to
// allow an access, so the old programs are detached after the new one is in
// place (for a moment both apply, which only denies more). Nothing is
// attached when the program already there is the same.
func (g *Group) setDevicesV2(rules []DeviceRule) error {
	devs := v2Rules(rules)
	insts, _, err := cgroup2.DeviceFilter(devs)
	if err != nil {
		return err
	}
	tags, err := programTags(insts)
	if err != nil {
		return err
	}
	dirFD, err := unix.Open(g.v2Dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("open "+g.v2Dir, err)
	}
	defer unix.Close(dirFD)
	old, err := link.QueryPrograms(link.QueryOptions{Target: dirFD, Attach: ebpf.AttachCGroupDevice})
	if err != nil {
		return err
	}
	if len(old.Programs) == 1 && slices.Contains(tags, programTag(old.Programs[0].ID)) {
		return nil
	}
	if err := g.v2.Update(&cgroup2.Resources{Devices: devs}); err != nil {
		return err
	}
	for _, p := range old.Programs {
		if err := detach(dirFD, p.ID); err != nil {
			return err
		}
	}
	return nil
}

func programTag(id ebpf.ProgramID) string {
	prog, err := ebpf.NewProgramFromID(id)
	if err != nil {
		return ""
	}
	defer prog.Close()
	info, err := prog.Info()
	if err != nil {
		return ""
	}
	return info.Tag
}

func detach(dirFD int, id ebpf.ProgramID) error {
	prog, err := ebpf.NewProgramFromID(id)
	if errors.Is(err, os.ErrNotExist) {
		return nil // detached meanwhile
	}
	if err != nil {
		return fmt.Errorf("cannot open device program %d: %w", id, err)
	}
	defer prog.Close()
	err = link.RawDetachProgram(link.RawDetachProgramOptions{Target: dirFD, Program: prog, Attach: ebpf.AttachCGroupDevice})
	if err != nil {
		return fmt.Errorf("cannot detach old device program %d: %w", id, err)
	}
	return nil
}

// programTags returns the tags the kernel may give insts: the first 8 bytes
// of their SHA-1 (up to Linux 6.17) or SHA-256 (from 6.18). cilium/ebpf's
// Tag computes only the first and skips the jump offsets, which the kernel
// hashes. Device filters load no maps, so no immediates need zeroing.
func programTags(insts asm.Instructions) ([]string, error) {
	var buf bytes.Buffer
	if err := insts.Marshal(&buf, hostEndian()); err != nil {
		return nil, err
	}
	s1, s256 := sha1.Sum(buf.Bytes()), sha256.Sum256(buf.Bytes())
	return []string{hex.EncodeToString(s1[:8]), hex.EncodeToString(s256[:8])}, nil
}

// hostEndian is binary.NativeEndian as a type cilium/ebpf accepts.
func hostEndian() binary.ByteOrder {
	if binary.NativeEndian.Uint16([]byte{1, 0}) == 1 {
		return binary.LittleEndian
	}
	return binary.BigEndian
}
