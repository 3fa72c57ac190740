package boot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/u-root/u-root/pkg/kmodule"
	"golang.org/x/sys/unix"

	"paddock.dev/paddock/internal/partition"
)

// diskTimeout is how long stage 1 waits for the disk to appear.
var diskTimeout = 10 * time.Second

// stage1 runs in the initramfs: it assembles the base of the chosen slot
// at newRootDir, switches to it and executes stage 2. It returns only on
// failure, with whether paddock.debug was set.
func stage1(con *console, signals <-chan os.Signal) (debug bool, err error) {
	if err := mountEarly(); err != nil {
		return false, err
	}
	ensureConsole()
	cl, err := readCmdline()
	con.trace = cl.Trace
	con.tracef("stage 1 started")
	if err != nil {
		return cl.Debug, err
	}
	loadModules(con)
	con.tracef("modules loaded")
	parts, err := waitPartitions(diskTimeout, partition.Bootenv, partition.Data)
	if err != nil {
		return cl.Debug, err
	}
	c := chooseSlot(con, parts.node(partition.Bootenv), cl.Slot)
	triedBoot = c.tried // from here a failure reboots, and the next boot counts it
	con.tracef("boot environment read, slot %s", c.slot)
	if err := runMountStep(dataMount(parts)); err != nil {
		return cl.Debug, err
	}
	keys, err := trustedKeys(filepath.Join(rootDir, trustedRel))
	if err != nil {
		return cl.Debug, err
	}
	rec := &BootRecord{Bootenv: c.bootenv, Partitions: parts.nodes()}
	if err := assembleBase(con, c, parts, keys, rec); err != nil {
		return cl.Debug, err
	}
	triedBoot = c.tried
	con.tracef("base slot %s mounted (%s)", rec.Slot, verifiedText(rec))
	env := stage2Env(os.Environ(), rec.Slot)
	if c.tried {
		// Before rootMounts moves /dev and /sys into the base.
		wd, err := openWatchdog(con, cl.Watchdog)
		if err != nil {
			con.logf("tried boot without a watchdog: %v", err)
		} else {
			rec.Watchdog = wd.name
			env = append(env, watchdogEnv+"="+strconv.Itoa(wd.fd))
			con.tracef("watchdog %s armed: %v", wd.name, wd.timeout)
		}
	}
	for _, m := range rootMounts() {
		if err := runMountStep(m); err != nil {
			return cl.Debug, err
		}
	}
	con.tracef("base and data mounted")
	if err := recordProblems(filepath.Join(newRootDir, problemsFile), c.problems, time.Now()); err != nil {
		con.logf("%v", err)
	}
	if err := writeRunRecord(newRootDir, rec); err != nil {
		con.logf("%v", err)
	}
	inProcess := sameBuild(initramfsInit, filepath.Join(newRootDir, paddockBinary))
	freeInitramfs, err := switchRoot(newRootDir)
	if err != nil {
		return cl.Debug, err
	}
	if !inProcess {
		freeInitramfs()
		con.tracef("switched root, stage 2 runs %s", paddockBinary)
		return cl.Debug, execInit([]string{paddockBinary, "init"}, env)
	}
	// The base's paddock is this very build: go on in this process rather
	// than start it again (a cold start costs a quarter of a second under
	// TCG), and let the agent run from this binary too (selfExe).
	con.tracef("switched root, stage 2 goes on in this process")
	if err := setEnv(env); err != nil {
		return cl.Debug, err
	}
	return stage2(con, signals, freeInitramfs) // once the agent is ready: it can wait
}

// setEnv replaces the process's environment with env.
func setEnv(env []string) error {
	os.Clearenv()
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if err := os.Setenv(k, v); err != nil {
			return err
		}
	}
	return nil
}

// initramfsInit is this binary, as the initramfs holds it.
var initramfsInit = "/init"

// mountEarly mounts /proc, /sys and /dev in the initramfs.
func mountEarly() error {
	early := []struct {
		fstype, dir string
		flags       uintptr
	}{
		{"proc", procDir, unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
		{"sysfs", sysDir, unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
		{"devtmpfs", devDir, unix.MS_NOSUID},
	}
	for _, m := range early {
		if err := os.MkdirAll(m.dir, 0o755); err != nil {
			return fmt.Errorf("cannot mount %s: %w", m.dir, err)
		}
		// EBUSY: mounted already (a kernel with CONFIG_DEVTMPFS_MOUNT)
		if err := mount(m.fstype, m.dir, m.fstype, m.flags, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			return err
		}
	}
	return nil
}

// loadModules loads the modules of paddock.modules with their
// dependencies. A module that fails is reported, not fatal: some fail
// harmlessly (crc32c-intel under TCG) and a missing one shows later.
func loadModules(con *console) {
	kver, err := kernelRelease()
	if err == nil {
		var names []string
		if names, err = moduleList(kver); err == nil && len(names) > 0 {
			err = probe(con, names)
		}
	}
	if err != nil {
		con.logf("cannot load kernel modules: %v", err)
	}
}

func probe(con *console, names []string) error {
	p, err := kmodule.NewProber(kmodule.ProbeOpts{RootDir: rootDir})
	if err != nil {
		return err
	}
	// The prober loads a module once its dependencies are in, and
	// independent modules at the same time: with more than one CPU, ext4
	// loads while the disk is probed.
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			errs[i] = p.Probe(name, "")
			con.tracef("module %s", name)
		})
	}
	wg.Wait()
	var failed []string
	for i, err := range errs {
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s (%v)", names[i], err))
		}
	}
	if len(failed) > 0 {
		con.logf("modules not loaded: %s", strings.Join(failed, ", "))
	}
	return nil
}
