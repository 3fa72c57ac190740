package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"paddock.dev/paddock/internal/testutil"
)

// appUID returns the user id that app runs as, from the record the agent
// keeps of its revision 1, checking that it is the owner of the app's data
// and neither root nor a user of the base.
func appUID(t *testing.T, d *device, app string) int {
	t.Helper()
	var u struct {
		UID  int  `json:"uid"`
		GID  int  `json:"gid"`
		Root bool `json:"root"`
	}
	if err := json.Unmarshal([]byte(testutil.ReadFile(t, d.path("var/lib/paddock/profiles/"+app+"/1/user.json"))), &u); err != nil {
		t.Fatal(err)
	}
	if u.Root || u.UID < 70000 || u.UID > 79999 || u.GID != u.UID {
		t.Fatalf("%s runs as %+v, want its own user and group from 70000 to 79999", app, u)
	}
	if passwd, err := os.ReadFile("/etc/passwd"); err == nil && strings.Contains(string(passwd), ":"+strconv.Itoa(u.UID)+":") {
		t.Errorf("%s's user %d is one of the base's", app, u.UID)
	}
	fi, err := os.Stat(d.path("var/lib/paddock/data/" + app + "/1"))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != u.UID || int(st.Gid) != u.GID {
		t.Errorf("%s's data belongs to %d:%d, want its user %d:%d", app, st.Uid, st.Gid, u.UID, u.GID)
	}
	return u.UID
}

// TestSetuidDataIsNoWayIn pins issue 9's attack: an app copied a shell into
// its data and made it setuid; any local user then ran it with euid 0,
// since the app was root, the data tree open to all and not nosuid, and a
// refresh carried the bit forward. Now the copy belongs to the app's user,
// no other user reaches it through the data tree (root's, mode 0700), and
// the refresh drops the bit. It failed before the fix: nobody ran the copy
// and got euid 0.
func TestSetuidDataIsNoWayIn(t *testing.T) {
	needRoot(t)
	d := newDevice(t)
	installEscape(t, d)
	uid := appUID(t, d, "escape")
	if out, err := runEscapeCmd(d, false, "setuid_copy").CombinedOutput(); err != nil || !strings.Contains(string(out), "setuid_copy: allowed") {
		t.Fatalf("paddock run escape setuid_copy: %v\n%s", err, out)
	}
	rootsh := d.path("var/lib/paddock/data/escape/1/rootsh")
	fi, err := os.Stat(rootsh)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != uid {
		t.Errorf("the app's setuid copy belongs to %d, want the app's user %d", st.Uid, uid)
	}

	// Another local user (nobody) runs it as the issue did. The test's
	// temporary folders, which a device's / stands for, let it pass (like
	// /var/lib/paddock on a host), so that only the data tree can stop it.
	for _, dir := range []string{filepath.Dir(d.root), d.root} {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(rootsh, "euid")
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Errorf("nobody ran the app's setuid copy: %s", out)
	} else if !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("nobody running the app's setuid copy: got %v (%s), want permission denied", err, out)
	}
	// The data tree above the app's data is root's alone, all the way up
	// from the data root.
	for _, dir := range []string{"var/lib/paddock/data", "var/lib/paddock/data/escape"} {
		fi, err := os.Stat(d.path(dir))
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: got owner %d mode %v, want root's with 0700", dir, st.Uid, fi.Mode().Perm())
		}
	}

	// A refresh carries the data forward without the setuid bit.
	d.ok("sign", "escape.pdk", "--key", "pub", "--revision", "2", "--delegation", "pub.delegation")
	d.ok("install", "escape.pdk")
	fi, err = os.Stat(d.path("var/lib/paddock/data/escape/2/rootsh"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 {
		t.Errorf("the refresh carried the copy forward with mode %v, want no setuid or setgid", fi.Mode())
	}
}

// rootEscapeApp is the app.yaml of the hostile app asking to run as root,
// with the network plug (auto-connected: the host's network namespace),
// whose sandbox shows the agent's resolv.conf (TestApplianceInQEMU).
var rootEscapeApp = strings.NewReplacer("apps:", "user: root\napps:",
	"    command: bin/escape\n", "    command: bin/escape\n    plugs: [network]\n").Replace(escapeApp)

// packEscapeRoot packs and signs the hostile app as escape.pdk, asking to
// run as root, with keys that allow hello and escape and grant root.
func packEscapeRoot(t *testing.T, d *device) {
	t.Helper()
	buildEscape(t, d, rootEscapeApp)
	d.setupKeys("hello,escape")
	d.ok("key", "delegate", "--key", "root", "--to", "pub", "--names", "hello,escape", "--grant-root", "-o", "pub.delegation")
	d.ok("pack", filepath.Join(d.work, "escape-src"), "-o", "escape.pdk")
	d.ok("sign", "escape.pdk", "--key", "pub", "--revision", "1", "--delegation", "pub.delegation")
}

// TestEscapeRoot checks the one way an app runs as root: its app.yaml says
// user: root, and its publisher's delegation grants root ('paddock key
// delegate --grant-root'). Without the grant the install is refused, saying
// what to do. As root, the other layers still hold: the device cgroup
// refuses the block device that the owner bits no longer stop.
func TestEscapeRoot(t *testing.T) {
	needRoot(t)
	d := newDevice(t)
	buildEscape(t, d, rootEscapeApp)
	d.setupKeys("escape")
	d.ok("pack", filepath.Join(d.work, "escape-src"), "-o", "escape.pdk")
	d.ok("sign", "escape.pdk", "--key", "pub", "--revision", "1", "--delegation", "pub.delegation")
	d.startDaemon("")
	r := d.paddock("install", "escape.pdk")
	if r.code == 0 || !strings.Contains(r.stdout+r.stderr, "paddock key delegate --grant-root") {
		t.Fatalf("install of a root app without the grant: got exit code %d\n%s%s\nwant a refusal naming 'paddock key delegate --grant-root'", r.code, r.stdout, r.stderr)
	}
	d.ok("key", "delegate", "--key", "root", "--to", "pub", "--names", "escape", "--grant-root", "-o", "root.delegation")
	d.ok("sign", "escape.pdk", "--key", "pub", "--revision", "1", "--delegation", "root.delegation")
	d.ok("install", "escape.pdk")
	for _, fast := range []bool{false, true} {
		out, err := runEscapeCmd(d, fast, "euid", "block_device", "mount", "own_data").CombinedOutput()
		if err != nil {
			t.Fatalf("paddock run escape (fast path %v): %v\n%s", fast, err, out)
		}
		for _, want := range []string{"euid: 0", "block_device: EPERM", "mount: EPERM", "own_data: allowed"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("root app (fast path %v): answer lacks %q:\n%s", fast, want, out)
			}
		}
	}
}
