// Command escape is a hostile app for the escape suite: each case tries one
// way out of the sandbox and prints "ok" with what the system answered, as
// "CASE: ERRNO-NAME" (or "CASE: allowed" when the attempt succeeded). The
// test that runs it decides what is a pass.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// otherData is a file of another app, named by the test with other_data=PATH;
// rootOnly is a file that only root may read, named with root_only=PATH.
var otherData, rootOnly string

// values are cases that answer with what they found, not with an error.
var values = map[string]func() (string, error){
	// Who the app is, as the base's id(1) says it and as the kernel does.
	"id_u": func() (string, error) {
		out, err := exec.Command("id", "-u").Output()
		return strings.TrimSpace(string(out)), err
	},
	"euid": func() (string, error) { return strconv.Itoa(os.Geteuid()), nil },
	"groups": func() (string, error) {
		gs, err := unix.Getgroups()
		return fmt.Sprint(gs), err
	},
	// The name servers: "agent's" when /etc/resolv.conf holds the header
	// line of the file the paddock agent writes (agent/netmgr), which an
	// app with the network plug must see.
	"resolv_conf": func() (string, error) {
		data, err := os.ReadFile("/etc/resolv.conf")
		if err != nil {
			return "", err
		}
		if strings.Contains(string(data), "# written by the paddock agent") {
			return "agent's", nil
		}
		return "another's", nil
	},
	// The GPIO controller of the board, through its character device.
	"gpiochip0": func() (string, error) { return gpioChipInfo("/dev/gpiochip0") },
}

var cases = map[string]func() error{
	"mount":        func() error { return unix.Mount("tmpfs", "/tmp", "tmpfs", 0, "") },
	"umount":       func() error { return unix.Unmount("/proc", unix.MNT_DETACH) },
	"pivot_root":   func() error { return unix.PivotRoot("/tmp", "/tmp") },
	"ptrace":       func() error { return unix.PtraceAttach(1) },
	"kexec_load":   func() error { return errno(unix.Syscall6(unix.SYS_KEXEC_LOAD, 0, 0, 0, 0, 0, 0)) },
	"init_module":  func() error { return errno(unix.Syscall(unix.SYS_INIT_MODULE, 0, 0, 0)) },
	"bpf":          func() error { return errno(unix.Syscall(unix.SYS_BPF, 0, 0, 0)) },
	"keyctl":       func() error { _, err := unix.KeyctlInt(unix.KEYCTL_JOIN_SESSION_KEYRING, 0, 0, 0, 0); return err },
	"unshare_user": func() error { return unix.Unshare(unix.CLONE_NEWUSER) },
	"raw_socket":   rawSocket,
	"dev_mem":      func() error { return openRW("/dev/mem") },
	"block_device": blockDevice,
	"other_data":   func() error { _, err := os.ReadFile(otherData); return err },
	// Files that root may read and an app may not: the owner bits stop it.
	"root_only":   func() error { _, err := os.ReadFile(rootOnly); return err },
	"read_shadow": func() error { return openRO("/etc/shadow") },
	// The attack of issue 9: a shell copied into the app's data and made
	// setuid, for any local user to run with the app's privileges. Here
	// the app copies itself; the test then tries it as another user.
	"setuid_copy": setuidCopy,
	"write_package": func() error {
		return os.WriteFile(filepath.Join(os.Getenv("APP"), "injected"), []byte("x"), 0o644)
	},
	"write_base":     func() error { return os.WriteFile("/etc/paddock-escape", []byte("x"), 0o644) },
	"write_proc_sys": func() error { return os.WriteFile("/proc/sys/kernel/domainname", []byte("escaped"), 0o644) },
	"clock":          func() error { ts := unix.NsecToTimespec(0); return unix.ClockSettime(unix.CLOCK_REALTIME, &ts) },
	"reboot":         func() error { return unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF) },
	"mknod":          func() error { return unix.Mknod("/tmp/sda", unix.S_IFBLK|0o600, int(unix.Mkdev(8, 0))) },
	"chroot":         func() error { return unix.Chroot("/tmp") },
	"setns":          setns,
	"fork_bomb":      forkBomb,
	// Not in the AppArmor profile (only a short list of /etc is): EACCES where AppArmor is enforced.
	"read_etc_hostname": func() error { _, err := os.ReadFile("/etc/hostname"); return err },
	"memory_bomb":       memoryBomb,

	// What the app may do.
	"own_data":     func() error { return roundTrip(filepath.Join(os.Getenv("APP_DATA"), "f")) },
	"own_common":   func() error { return roundTrip(filepath.Join(os.Getenv("APP_COMMON"), "f")) },
	"tmp":          func() error { return roundTrip("/tmp/f") },
	"read_package": func() error { _, err := os.ReadFile(filepath.Join(os.Getenv("APP"), "meta/app.yaml")); return err },
	"loopback":     loopback,
	"dev_null":     func() error { return openRW("/dev/null") },
	// The default devices work for an app that is not root.
	"devices": devices,
	// Its data is mounted nosuid and nodev in the sandbox.
	"data_nosuid": dataNosuid,
	"exec":        func() error { return exec.Command("/bin/true").Run() },
	// Another app's folder, where a content plug's policy shows it.
	"read_shared": func() error {
		_, err := os.ReadFile(filepath.Join(os.Getenv("APP_COMMON"), "shared/hello.txt"))
		return err
	},
	"write_shared": func() error {
		return os.WriteFile(filepath.Join(os.Getenv("APP_COMMON"), "shared/from-escape"), []byte("data"), 0o644)
	},
	// The host's /proc, where system-observe's policy shows it: the
	// host's first process, not the sandbox's init.
	"host_proc": func() error {
		comm, err := os.ReadFile("/run/host/proc/1/comm")
		if err == nil && strings.TrimSpace(string(comm)) == "paddock" {
			return errors.New("the sandbox's own init")
		}
		return err
	},
	// /sys is there only when the command's policy mounts it (hardware-observe).
	"read_sys": func() error { _, err := os.ReadFile("/sys/devices/system/cpu/online"); return err },
	// A child left running when the app exits: the sandbox's init adopts
	// it, and must reap it when it ends (the test watches from the host).
	"orphan": func() error { return exec.Command("/bin/sleep", "2").Start() },
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: escape CASE...")
		os.Exit(2)
	}
	if os.Args[1] == "serve" {
		serve()
		return
	}
	for _, arg := range os.Args[1:] {
		name, value, _ := strings.Cut(arg, "=")
		switch name {
		case "other_data":
			otherData = value
		case "root_only":
			rootOnly = value
		}
		if v := values[name]; v != nil {
			got, err := v()
			if err != nil {
				got = describe(err)
			}
			fmt.Printf("%s: %s\n", name, got)
			continue
		}
		f := cases[name]
		if f == nil {
			fmt.Printf("%s: unknown case\n", name)
			continue
		}
		err := f()
		fmt.Printf("%s: %s\n", name, describe(err))
	}
}

func describe(err error) string {
	if err == nil {
		return "allowed"
	}
	var en unix.Errno
	if errors.As(err, &en) {
		return unix.ErrnoName(en)
	}
	return "error " + err.Error()
}

func errno(_, _ uintptr, e unix.Errno) error {
	if e != 0 {
		return e
	}
	return nil
}

// devices opens the default device nodes read-write, and a pseudo-terminal
// pair through the sandbox's devpts.
func devices() error {
	for _, p := range []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"} {
		if err := openRW(p); err != nil {
			return err
		}
	}
	ptmx, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return err
	}
	defer unix.Close(ptmx)
	if err := unix.IoctlSetPointerInt(ptmx, unix.TIOCSPTLCK, 0); err != nil {
		return err
	}
	n, err := unix.IoctlGetInt(ptmx, unix.TIOCGPTN)
	if err != nil {
		return err
	}
	return openRW("/dev/pts/" + strconv.Itoa(n))
}

// dataNosuid checks the mount options of $APP_DATA and $APP_COMMON.
func dataNosuid() error {
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	want := map[string]bool{os.Getenv("APP_DATA"): false, os.Getenv("APP_COMMON"): false}
	for _, line := range strings.Split(string(info), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		if _, ok := want[f[4]]; ok {
			opts := "," + f[5] + ","
			want[f[4]] = strings.Contains(opts, ",nosuid,") && strings.Contains(opts, ",nodev,")
		}
	}
	for dir, ok := range want {
		if !ok {
			return fmt.Errorf("%s is not mounted nosuid,nodev", dir)
		}
	}
	return nil
}

func openRO(path string) error {
	f, err := os.Open(path)
	if err == nil {
		f.Close()
	}
	return err
}

// setuidCopy copies the app's own program to $APP_DATA/rootsh, setuid.
func setuidCopy() error {
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		return err
	}
	path := filepath.Join(os.Getenv("APP_DATA"), "rootsh")
	if err := os.WriteFile(path, self, 0o755); err != nil {
		return err
	}
	return os.Chmod(path, 0o755|os.ModeSetuid)
}

func openRW(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err == nil {
		f.Close()
	}
	return err
}

// blockDevice opens the first block device it finds in /dev.
func blockDevice() error {
	for _, p := range []string{"/dev/vda", "/dev/sda", "/dev/nvme0n1", "/dev/loop0"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0 {
			return openRW(p)
		}
	}
	return errors.New("no block device node to try")
}

func rawSocket() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP)
	if err == nil {
		unix.Close(fd)
	}
	return err
}

func setns() error {
	fd, err := unix.Open("/proc/1/ns/mnt", unix.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Setns(fd, unix.CLONE_NEWNS)
}

func roundTrip(path string) error {
	if err := os.WriteFile(path, []byte("data"), 0o644); err != nil {
		return err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if string(b) != "data" {
		return errors.New("read back different data")
	}
	return os.Remove(path)
}

func loopback() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer l.Close()
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	c, err := net.DialTimeout("tcp", l.Addr().String(), 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, 2)
	_, err = c.Read(buf)
	return err
}

// forkBomb starts sleeping children until the kernel refuses; it prints how
// many it got and answers with the error that stopped it.
func forkBomb() error {
	var pids []int
	defer func() {
		for _, p := range pids {
			unix.Kill(p, unix.SIGKILL)
			var ws unix.WaitStatus
			unix.Wait4(p, &ws, 0, nil)
		}
	}()
	for range 10000 {
		pid, _, e := unix.RawSyscall(unix.SYS_CLONE, uintptr(unix.SIGCHLD), 0, 0)
		if e != 0 {
			fmt.Printf("fork_bomb_count: %s\n", strconv.Itoa(len(pids)))
			return e
		}
		if pid == 0 { // the child: sleep until killed
			for {
				unix.Pause()
			}
		}
		pids = append(pids, int(pid))
	}
	return nil
}

// memoryBomb touches 1 GiB; the memory limit must stop it.
func memoryBomb() error {
	const size = 1 << 30
	b, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return err
	}
	for i := 0; i < size; i += 4096 {
		b[i] = 1
	}
	return nil
}

// serve stays running, as a service would, and answers the lines of its
// standard input, one line each: "open PATH" opens a device node for
// reading and writing and closes it again, "hold PATH" opens it and keeps
// it open, "write PATH TEXT" writes TEXT and a newline to a node opened
// with hold, and "pid" says the app's PID in its sandbox.
func serve() {
	held := map[string]*os.File{}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		verb, arg, _ := strings.Cut(in.Text(), " ")
		var answer string
		switch verb {
		case "pid":
			answer = strconv.Itoa(os.Getpid())
		case "open", "hold":
			f, err := os.OpenFile(arg, os.O_RDWR|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
			answer = describe(err)
			if err == nil && verb == "hold" {
				held[arg] = f
			} else if err == nil {
				f.Close()
			}
		case "write":
			path, text, _ := strings.Cut(arg, " ")
			if f := held[path]; f != nil {
				_, err := f.WriteString(text + "\n")
				answer = describe(err)
			} else {
				answer = "not held"
			}
		default:
			answer = "unknown request"
		}
		fmt.Printf("%s: %s\n", verb, answer)
	}
}

// gpioChipInfo opens a GPIO chip's character device and asks the driver
// for its name, label and number of lines (GPIO_GET_CHIPINFO_IOCTL of
// linux/gpio.h, which x/sys/unix does not define).
func gpioChipInfo(path string) (string, error) {
	var info struct {
		Name  [32]byte
		Label [32]byte
		Lines uint32
	}
	const getChipInfo = 2<<30 | unsafe.Sizeof(info)<<16 | 0xb4<<8 | 0x01 // _IOR(0xB4, 0x01, struct gpiochip_info)
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), getChipInfo, uintptr(unsafe.Pointer(&info))); e != 0 {
		return "", e
	}
	return fmt.Sprintf("name=%s label=%s lines=%d", unix.ByteSliceToString(info.Name[:]),
		unix.ByteSliceToString(info.Label[:]), info.Lines), nil
}
