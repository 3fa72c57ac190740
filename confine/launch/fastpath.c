//go:build linux && cgo

// The fast path of 'paddock run'. When the app command's sandbox is kept
// and the launch file that the Go launcher wrote for it is fresh, this
// constructor, which runs before the Go runtime starts, does what the Go
// launcher would do from there on: join the app's cgroup and the
// sandbox's namespaces, enter the AppArmor profile, drop every privilege,
// load the precompiled seccomp filter, then fork and exec the app and
// wait for it. Anything unexpected before the first change to the process
// (a missing file, a flag, a stale sandbox) returns to the Go launcher,
// which rebuilds what is needed. It saves the start of the Go runtime, most
// of a launch. Like runc's nsexec, it is C because it must run first.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define LAUNCH_MAGIC "paddock-launch-3"
#define MAX_FILE (64 * 1024)
#define MAX_BPF (4096 * 8)
#define MAX_POLICY (16 * 1024)
#define MAX_LIST 256
#define SETUP_FAILED 126

struct launch {
	const char *init_pid, *init_start, *label, *seccomp, *datadir, *uid, *gid, *policy_path, *policy;
	int ncg, nargv, nenv;
	const char *cg[16], *argv[MAX_LIST], *env[MAX_LIST];
};

static const char *app_name = "app";
static volatile pid_t child;

static void die(const char *what) {
	fprintf(stderr, "error: cannot run %s: %s: %s\n", app_name, what, strerror(errno));
	_exit(SETUP_FAILED);
}

// read_file reads up to max bytes of path into buf, NUL-terminated; -1 on error.
static ssize_t read_file(const char *path, char *buf, size_t max) {
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t n = 0;
	for (;;) {
		ssize_t r = read(fd, buf + n, max - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += r;
		if (n == max) {
			close(fd);
			return -1; // too big to be ours
		}
	}
	close(fd);
	buf[n] = 0;
	return n;
}

// next returns the NUL-terminated string at *p and moves past it, or NULL at the end.
static const char *next(const char **p, const char *end) {
	if (*p >= end)
		return NULL;
	const char *s = *p;
	const char *z = memchr(s, 0, end - s);
	if (!z)
		return NULL;
	*p = z + 1;
	return s;
}

static int next_list(const char **p, const char *end, const char **out, int max) {
	const char *n = next(p, end);
	if (!n)
		return -1;
	int count = atoi(n);
	if (count < 0 || count > max)
		return -1;
	for (int i = 0; i < count; i++)
		if (!(out[i] = next(p, end)))
			return -1;
	return count;
}

// parse_id returns the user or group id in s, or -1 unless it is a plain
// decimal number below 2^31.
static long parse_id(const char *s) {
	if (!*s || strlen(s) > 10)
		return -1;
	long v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v > 0x7fffffffL ? -1 : v;
}

// parse reads the launch file: see writeLaunchFile in sandboxes_linux.go.
static int parse(const char *buf, size_t n, struct launch *l) {
	const char *p = buf, *end = buf + n;
	const char *magic = next(&p, end);
	if (!magic || strcmp(magic, LAUNCH_MAGIC) != 0)
		return -1;
	if (!(l->init_pid = next(&p, end)) || !(l->init_start = next(&p, end)) || !(l->label = next(&p, end)) ||
	    !(l->seccomp = next(&p, end)) || !(l->datadir = next(&p, end)) || !(l->uid = next(&p, end)) ||
	    !(l->gid = next(&p, end)) || !(l->policy_path = next(&p, end)) || !(l->policy = next(&p, end)) ||
	    parse_id(l->uid) < 0 || parse_id(l->gid) < 0)
		return -1;
	if ((l->ncg = next_list(&p, end, l->cg, 16)) < 0 || (l->nargv = next_list(&p, end, l->argv, MAX_LIST)) < 1 ||
	    (l->nenv = next_list(&p, end, l->env, MAX_LIST)) < 0)
		return -1;
	return 0;
}

// start_time is field 22 of /proc/PID/stat; -1 for a process that has
// ended (a zombie has left its namespaces).
static int start_time(const char *pid, char *out, size_t max) {
	char path[64], stat[1024];
	snprintf(path, sizeof path, "/proc/%s/stat", pid);
	if (read_file(path, stat, sizeof stat - 1) < 0)
		return -1;
	char *s = strrchr(stat, ')');
	if (!s)
		return -1;
	int field = 2;
	for (char *tok = strtok(s + 1, " "); tok; tok = strtok(NULL, " ")) {
		if (++field == 3 && (*tok == 'Z' || *tok == 'X'))
			return -1;
		if (field == 22) {
			snprintf(out, max, "%s", tok);
			return 0;
		}
	}
	return -1;
}

static int valid_name(const char *s, int dots_ok) {
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' || (dots_ok && (*s == '_' || (*s >= 'A' && *s <= 'Z')))))
			return 0;
	return 1;
}

static void write_str(const char *path, const char *s) {
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		die(path);
	ssize_t n;
	do
		n = write(fd, s, strlen(s));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		die(path);
	close(fd);
}

// drop_privileges does what dropPrivileges in privs_linux.go does, in the
// same order: the bounding and ambient sets and the locked secure bits
// (which need CAP_SETPCAP), the app's user and group with no other group
// (which need CAP_SETUID and CAP_SETGID), then no capabilities at all,
// no_new_privs and the seccomp filter. The process has one thread here, so
// the libc calls change only it.
static void drop_privileges(int last_cap, uid_t uid, gid_t gid, const char *bpf, size_t bpf_len) {
	for (int c = 0; c <= last_cap; c++)
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) && errno != EINVAL)
			die("prctl(PR_CAPBSET_DROP)");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL)
		die("prctl(PR_CAP_AMBIENT)");
	// NOROOT, NO_SETUID_FIXUP and KEEP_CAPS (off), each locked.
	if (prctl(PR_SET_SECUREBITS, 0x2f, 0, 0, 0))
		die("prctl(PR_SET_SECUREBITS)");
	if (setgroups(gid ? 1 : 0, &gid))
		die("setgroups");
	if (setresgid(gid, gid, gid))
		die("setresgid");
	if (setresuid(uid, uid, uid))
		die("setresuid");
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof data);
	if (syscall(SYS_capset, &hdr, data))
		die("capset");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		die("prctl(PR_SET_NO_NEW_PRIVS)");
	struct sock_fprog prog = {(unsigned short)(bpf_len / sizeof(struct sock_filter)), (struct sock_filter *)bpf};
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_LOG, &prog)) {
		if (errno != EINVAL || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog))
			die("cannot load the seccomp filter");
	}
}

static void forward(int sig) {
	if (child > 0)
		kill(child, sig);
}

static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT};
static const char *namespaces[] = {"ipc", "uts", "net", "pid", "mnt"};
static const int ns_types[] = {CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWNET, CLONE_NEWPID, CLONE_NEWNS};

__attribute__((constructor)) static void paddock_run_fast_path(int argc, char **argv, char **envp) {
	static char file[MAX_FILE + 1], bpf[MAX_BPF + 1], policy[MAX_POLICY + 2];
	static struct launch l;
	if (argc < 3 || strcmp(argv[1], "run") != 0 || argv[2][0] == '-' || geteuid() != 0)
		return;
	const char *off = getenv("PADDOCK_NO_FAST_PATH"); // for tests and debugging
	if (off && *off)
		return;
	if (getenv("PADDOCK_NOTIFY_FD"))
		return; // a notify service: the Go launcher passes the pipe on (service.go)
	if (argc > 3 && strcmp(argv[3], "--") != 0)
		return; // flags: the Go launcher explains them
	char app[64], cmd[64];
	const char *dot = strchr(argv[2], '.');
	size_t alen = dot ? (size_t)(dot - argv[2]) : strlen(argv[2]);
	if (alen == 0 || alen >= sizeof app || strlen(dot ? dot + 1 : argv[2]) >= sizeof cmd)
		return;
	memcpy(app, argv[2], alen);
	app[alen] = 0;
	snprintf(cmd, sizeof cmd, "%s", dot ? dot + 1 : app);
	if (!valid_name(app, 0) || !valid_name(cmd, 1))
		return;

	const char *root = getenv("PADDOCK_ROOT");
	if (!root || !*root)
		root = "";
	char path[4096], rev[32];
	snprintf(path, sizeof path, "%s/apps/%s/current", root, app);
	ssize_t n = readlink(path, rev, sizeof rev - 1);
	if (n <= 0)
		return;
	rev[n] = 0;
	for (char *c = rev; *c; c++)
		if (*c < '0' || *c > '9')
			return;
	snprintf(path, sizeof path, "%s/run/paddock/ns/paddock.%s.%s.%s.launch", root, app, cmd, rev);
	ssize_t len = read_file(path, file, MAX_FILE);
	if (len < 0 || parse(file, len, &l) < 0)
		return;
	// The sandbox was built from the policy the launch file holds: once the
	// agent has written another, the Go launcher replaces the sandbox.
	ssize_t plen = read_file(l.policy_path, policy, MAX_POLICY + 1);
	if (plen < 0 || (size_t)plen != strlen(l.policy) || memcmp(policy, l.policy, plen) != 0)
		return;
	// The record's lock, held shared until the app is forked: an idle
	// sandbox's init ends only under the exclusive lock (idle_linux.go).
	snprintf(path, sizeof path, "%s/run/paddock/ns/paddock.%s.%s.%s.json.lock", root, app, cmd, rev);
	int lock = open(path, O_RDONLY | O_CLOEXEC);
	if (lock < 0)
		return;
	int r;
	while ((r = flock(lock, LOCK_SH)) < 0 && errno == EINTR)
		;
	char start[64];
	if (r < 0 || start_time(l.init_pid, start, sizeof start) < 0 || strcmp(start, l.init_start) != 0) {
		close(lock);
		return; // the sandbox is gone: the Go launcher starts a new one
	}
	ssize_t bpf_len = read_file(l.seccomp, bpf, MAX_BPF);
	char cap_last[16];
	if (bpf_len <= 0 || bpf_len % sizeof(struct sock_filter) != 0 ||
	    read_file("/proc/sys/kernel/cap_last_cap", cap_last, sizeof cap_last - 1) < 0) {
		close(lock);
		return;
	}
	int ns_fds[5];
	for (int i = 0; i < 5; i++) {
		snprintf(path, sizeof path, "/proc/%s/ns/%s", l.init_pid, namespaces[i]);
		if ((ns_fds[i] = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
			while (--i >= 0)
				close(ns_fds[i]);
			close(lock);
			return;
		}
	}

	// A service's launcher writes the exit code where the agent says
	// (service.go); the file is opened here, before the host's root is gone.
	const char *status_path = getenv("PADDOCK_SERVICE_STATUS");
	int status_fd = -1;
	if (status_path && *status_path)
		status_fd = open(status_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	// From here on the process changes: every failure is final.
	app_name = app;
	char pid[32];
	snprintf(pid, sizeof pid, "%d", getpid());
	for (int i = 0; i < l.ncg; i++)
		write_str(l.cg[i], pid);
	if (*l.label) {
		char attr[256];
		snprintf(attr, sizeof attr, "exec %s", l.label);
		if (access("/proc/self/attr/apparmor/exec", F_OK) == 0)
			write_str("/proc/self/attr/apparmor/exec", attr);
		else
			write_str("/proc/self/attr/exec", attr);
	}
	for (int i = 0; i < 5; i++)
		if (setns(ns_fds[i], ns_types[i]))
			die("cannot join the sandbox");
	drop_privileges(atoi(cap_last), (uid_t)parse_id(l.uid), (gid_t)parse_id(l.gid), bpf, bpf_len);

	// The command line: the command's words, then the caller's arguments after "--".
	int extra = argc > 4 ? argc - 4 : 0;
	const char **args = calloc(l.nargv + extra + 1, sizeof *args);
	const char **env = calloc(l.nenv + MAX_LIST + 1, sizeof *env);
	if (!args || !env)
		die("out of memory");
	memcpy(args, l.argv, l.nargv * sizeof *args);
	for (int i = 0; i < extra; i++)
		args[l.nargv + i] = argv[4 + i];
	int ne = 0;
	for (int i = 0; i < l.nenv; i++)
		env[ne++] = l.env[i];
	for (char **e = envp; *e && ne < l.nenv + MAX_LIST; e++)
		if (!strncmp(*e, "TERM=", 5) || !strncmp(*e, "LANG=", 5) || !strncmp(*e, "TZ=", 3) || !strncmp(*e, "LC_", 3))
			env[ne++] = *e;

	child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		if (chdir(l.datadir))
			die(l.datadir);
		execve(args[0], (char *const *)args, (char *const *)env);
		die(args[0]);
	}
	close(lock); // the app is in the sandbox: its init may no longer end under it
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = forward;
	sa.sa_flags = SA_RESTART;
	for (size_t i = 0; i < sizeof forwarded / sizeof *forwarded; i++)
		sigaction(forwarded[i], &sa, NULL);
	int status;
	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR)
			die("waitpid");
	int code = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
	if (status_fd >= 0) {
		char s[16];
		int len = snprintf(s, sizeof s, "%d\n", code);
		if (write(status_fd, s, len) < 0) {
		}
	}
	_exit(code);
}
