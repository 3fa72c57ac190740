// Package denials finds seccomp and AppArmor denials in the kernel log and
// explains them: which plug would allow the access, or why none can.
package denials

//go:generate go run gen_sysnum.go

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Denial is one access the kernel refused (or, in devmode, logged).
type Denial struct {
	// Time is when the kernel audited it (from audit(SECONDS.MS:SERIAL)).
	Time time.Time `json:"time,omitzero"`
	// Kind is "seccomp" or "apparmor".
	Kind string `json:"kind"`
	// Action is what happened: for AppArmor "DENIED" or "ALLOWED" (complain
	// mode); for seccomp "errno", "log", "trap", "kill_thread" or "kill_process".
	Action string `json:"action"`
	// Label is the AppArmor profile, or for seccomp the profile from subj=
	// when there is one, else the executable, else the command name.
	Label string `json:"label"`
	PID   int    `json:"pid,omitempty"`
	Comm  string `json:"comm,omitempty"`
	Exe   string `json:"exe,omitempty"`
	// Syscall, SyscallNr and Arch are set for seccomp.
	Syscall   string `json:"syscall,omitempty"`
	SyscallNr int    `json:"syscall_nr,omitempty"`
	Arch      string `json:"arch,omitempty"`
	// Path, Operation and Requested are AppArmor's name=, operation= and
	// requested_mask= (file accesses); Family, SockType and Capability are
	// set for network and capability denials.
	Path       string `json:"path,omitempty"`
	Operation  string `json:"operation,omitempty"`
	Requested  string `json:"requested,omitempty"`
	Family     string `json:"family,omitempty"`
	SockType   string `json:"sock_type,omitempty"`
	Capability string `json:"capability,omitempty"`
}

// Audit record types that carry denials.
const (
	auditSeccomp = "1326" // AUDIT_SECCOMP
	auditAVC     = "1400" // AUDIT_AVC (AppArmor)
	auditUserAVC = "1107" // AUDIT_USER_AVC (AppArmor in dbus)
)

// seccompActions names the SECCOMP_RET_* actions that deny or log a call.
var seccompActions = map[uint32]string{
	0x00000000: "kill_thread",
	0x80000000: "kill_process",
	0x00030000: "trap",
	0x00050000: "errno",
	0x7ffc0000: "log",
}

// archNames maps AUDIT_ARCH_* values to names.
var archNames = map[uint32]string{
	0xc000003e: "x86_64",
	0x40000003: "i386",
	0xc00000b7: "aarch64",
	0x40000028: "arm",
}

// Parse reads one kernel log line: a /dev/kmsg record ("6,1234,5678,-;audit:
// ..."), a dmesg line ("[  12.345678] audit: ..."), a journal or syslog line
// ("... kernel: audit: ...") or an auditd line ("type=AVC msg=audit(...): ...").
// It reports false for anything that is not a seccomp or AppArmor denial.
func Parse(line string) (Denial, bool) {
	kind, rest, ok := classify(line)
	if !ok {
		return Denial{}, false
	}
	f := fields(rest)
	d := Denial{Kind: kind, Time: auditTime(rest), Comm: f["comm"], Exe: f["exe"], PID: atoi(f["pid"])}
	if kind == "apparmor" {
		return parseAppArmor(d, f)
	}
	return parseSeccomp(d, f)
}

// classify finds the audit record in line and its kind.
func classify(line string) (kind, rest string, ok bool) {
	if i := strings.Index(line, "apparmor="); i >= 0 && isAVC(line[:i]) {
		return "apparmor", line, true
	}
	if i := strings.Index(line, "type="+auditSeccomp+" "); i >= 0 {
		return "seccomp", line[i:], true
	}
	if i := strings.Index(line, "type=SECCOMP "); i >= 0 {
		return "seccomp", line[i:], true
	}
	return "", "", false
}

// isAVC reports whether the text before apparmor= names an AVC record.
func isAVC(head string) bool {
	for _, t := range []string{"type=" + auditAVC + " ", "type=" + auditUserAVC + " ", "type=AVC ", "type=USER_AVC "} {
		if strings.Contains(head, t) {
			return true
		}
	}
	return false
}

func parseAppArmor(d Denial, f map[string]string) (Denial, bool) {
	d.Action = f["apparmor"]
	if d.Action != "DENIED" && d.Action != "ALLOWED" {
		return Denial{}, false // AUDIT and STATUS records are not denials
	}
	d.Label = f["profile"]
	if d.Label == "" {
		d.Label = f["label"] // dbus USER_AVC records
	}
	d.Path = f["name"]
	d.Operation = f["operation"]
	d.Requested = f["requested_mask"]
	if d.Requested == "" {
		d.Requested = f["requested"] // signal and ptrace records
	}
	d.Family, d.SockType = f["family"], f["sock_type"]
	d.Capability = f["capname"]
	if d.Label == "" && d.Path == "" {
		return Denial{}, false
	}
	return d, true
}

func parseSeccomp(d Denial, f map[string]string) (Denial, bool) {
	code, err := strconv.ParseUint(strings.TrimPrefix(f["code"], "0x"), 16, 32)
	if err != nil {
		return Denial{}, false
	}
	act, ok := seccompActions[uint32(code)&0xffff0000]
	if !ok {
		return Denial{}, false // allowed, traced or sent to a notifier
	}
	arch, err := strconv.ParseUint(f["arch"], 16, 32)
	if err != nil {
		return Denial{}, false
	}
	nr, err := strconv.Atoi(f["syscall"])
	if err != nil {
		return Denial{}, false
	}
	d.Action = act
	d.Arch = archName(uint32(arch))
	d.SyscallNr = nr
	d.Syscall = SyscallName(uint32(arch), nr)
	d.Label = seccompLabel(f)
	return d, true
}

// seccompLabel prefers the AppArmor profile in subj= ("paddock.hello.hello
// (enforce)"), then the executable, then the command name.
func seccompLabel(f map[string]string) string {
	if subj, _, _ := strings.Cut(f["subj"], " "); strings.HasPrefix(subj, "paddock.") {
		return subj
	}
	if f["exe"] != "" {
		return f["exe"]
	}
	return f["comm"]
}

func archName(arch uint32) string {
	if n, ok := archNames[arch]; ok {
		return n
	}
	return fmt.Sprintf("arch %#x", arch)
}

// SyscallName names syscall nr on the audit arch, or returns "syscall NR".
func SyscallName(arch uint32, nr int) string {
	if names := syscallNames[arch]; nr >= 0 && nr < len(names) && names[nr] != "" {
		return names[nr]
	}
	return "syscall " + strconv.Itoa(nr)
}

// auditTime reads the time from "audit(1700000000.123:45)".
func auditTime(s string) time.Time {
	i := strings.Index(s, "audit(")
	if i < 0 {
		return time.Time{}
	}
	s = s[i+len("audit("):]
	stamp, _, ok := strings.Cut(s, ":")
	if !ok {
		return time.Time{}
	}
	sec, frac, _ := strings.Cut(stamp, ".")
	secs, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || secs < 0 {
		return time.Time{}
	}
	var ms int64
	if len(frac) == 3 {
		if ms, err = strconv.ParseInt(frac, 10, 64); err != nil {
			ms = 0
		}
	}
	return time.Unix(secs, ms*int64(time.Millisecond)).UTC()
}

// fields splits the key=value pairs of an audit record. Values are bare,
// "quoted" or hex-encoded (the kernel hex-encodes names with spaces or
// quotes); the last occurrence of a key wins except for the first msg=.
func fields(s string) map[string]string {
	f := make(map[string]string)
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			break
		}
		key := s[:eq]
		if sp := strings.LastIndexAny(key, " '"); sp >= 0 {
			key = key[sp+1:]
		}
		s = s[eq+1:]
		var val string
		if strings.HasPrefix(s, `"`) {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				val, s = s[1:], ""
			} else {
				val, s = s[1:end+1], s[end+2:]
			}
		} else {
			end := strings.IndexAny(s, " '")
			if end < 0 {
				end = len(s)
			}
			val, s = unhex(key, s[:end]), s[end:]
		}
		f[key] = val
	}
	return f
}

// hexKeys are the fields the kernel may hex-encode.
var hexKeys = map[string]bool{"name": true, "comm": true, "exe": true, "profile": true, "peer": true, "target": true, "cwd": true}

func unhex(key, v string) string {
	if !hexKeys[key] || len(v) < 2 || len(v)%2 != 0 || v == "(null)" {
		return v
	}
	b, err := hex.DecodeString(v)
	if err != nil || !utf8.Valid(b) {
		return v
	}
	return string(b)
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// ReadKernelLog reads kernel log lines from r and returns the denials of app
// (profile "paddock.APP.*" or executable under /apps/APP/); an empty app
// means every paddock app.
func ReadKernelLog(r io.Reader, app string) ([]Denial, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	var out []Denial
	for sc.Scan() {
		d, ok := Parse(sc.Text())
		if ok && Belongs(d, app) {
			out = append(out, d)
		}
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("cannot read kernel log: %w", err)
	}
	return out, nil
}

// Belongs reports whether d comes from app, or from any paddock app when app
// is empty.
func Belongs(d Denial, app string) bool {
	label := "paddock."
	dir := "/apps/"
	if app != "" {
		label += app + "."
		dir += app + "/"
	}
	return strings.HasPrefix(d.Label, label) || strings.HasPrefix(d.Exe, dir) || strings.HasPrefix(d.Label, dir)
}

// App returns the app a denial belongs to, or "".
func App(d Denial) string {
	if rest, ok := strings.CutPrefix(d.Label, "paddock."); ok {
		app, _, _ := strings.Cut(rest, ".")
		return app
	}
	for _, p := range []string{d.Exe, d.Label} {
		if rest, ok := strings.CutPrefix(p, "/apps/"); ok {
			app, _, _ := strings.Cut(rest, "/")
			return app
		}
	}
	return ""
}
