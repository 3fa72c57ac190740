package seccomp

// defaultGroups is the allowlist of every app, by concern. It is close to
// snapd's default template and Docker's default profile, less what an app on
// an appliance has no business doing. Names of every supported architecture
// are listed; Compile skips those an architecture lacks.
var defaultGroups = map[string][]string{
	"file": {
		"read", "write", "readv", "writev", "pread64", "pwrite64",
		"preadv", "pwritev", "preadv2", "pwritev2",
		"open", "openat", "openat2", "creat", "close", "close_range",
		"lseek", "_llseek",
		"stat", "lstat", "fstat", "newfstatat", "statx",
		"stat64", "lstat64", "fstat64", "fstatat64",
		"statfs", "fstatfs", "statfs64", "fstatfs64",
		"access", "faccessat", "faccessat2",
		"readlink", "readlinkat",
		"mkdir", "mkdirat", "rmdir", "unlink", "unlinkat",
		"rename", "renameat", "renameat2",
		"link", "linkat", "symlink", "symlinkat",
		"chmod", "fchmod", "fchmodat",
		"chown", "fchown", "fchownat", "lchown", "chown32", "fchown32", "lchown32",
		"truncate", "ftruncate", "truncate64", "ftruncate64",
		"fallocate", "fadvise64", "arm_fadvise64_64", "readahead",
		"fsync", "fdatasync", "sync", "syncfs",
		"sync_file_range", "arm_sync_file_range",
		"getdents", "getdents64", "getcwd", "chdir", "fchdir", "umask",
		"utime", "utimes", "utimensat", "utimensat_time64", "futimesat",
		"flock", "fcntl", "fcntl64", "dup", "dup2", "dup3",
		"sendfile", "sendfile64", "splice", "tee", "vmsplice", "copy_file_range",
		"getxattr", "lgetxattr", "fgetxattr", "setxattr", "lsetxattr", "fsetxattr",
		"listxattr", "llistxattr", "flistxattr",
		"removexattr", "lremovexattr", "fremovexattr",
		"memfd_create",
		"io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents",
		"io_pgetevents", "io_pgetevents_time64",
		"inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch",
	},
	"memory": {
		"brk", "mmap", "mmap2", "munmap", "mremap", "mprotect", "madvise",
		"mlock", "mlock2", "munlock", "mlockall", "munlockall",
		"mincore", "msync", "remap_file_pages", "membarrier",
		"pkey_alloc", "pkey_free", "pkey_mprotect",
		"get_mempolicy", "set_mempolicy", "mbind",
	},
	"signal": {
		"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending",
		"rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64",
		"rt_sigqueueinfo", "rt_tgsigqueueinfo", "sigaltstack",
		"sigaction", "sigprocmask", "sigpending", "sigsuspend", "sigreturn",
		"kill", "tkill", "tgkill", "signalfd", "signalfd4", "pause",
		"pidfd_open", "pidfd_send_signal",
	},
	"thread": {
		"futex", "futex_time64", "futex_waitv",
		"set_robust_list", "get_robust_list", "gettid",
		"set_tid_address", "rseq", "arch_prctl",
		"set_thread_area", "get_thread_area", "set_tls", "cacheflush",
		"sched_yield", "sched_getaffinity", "sched_setaffinity",
		"sched_getparam", "sched_setparam", "sched_getscheduler", "sched_setscheduler",
		"sched_get_priority_max", "sched_get_priority_min",
		"sched_rr_get_interval", "sched_rr_get_interval_time64",
		"sched_getattr", "sched_setattr",
		"getpriority", "setpriority", "ioprio_get", "ioprio_set", "getcpu",
	},
	"time": {
		"time", "gettimeofday", "clock_gettime", "clock_gettime64",
		"clock_getres", "clock_getres_time64",
		"clock_nanosleep", "clock_nanosleep_time64", "nanosleep",
		"times", "getitimer", "setitimer", "alarm",
		"timer_create", "timer_settime", "timer_settime64",
		"timer_gettime", "timer_gettime64", "timer_getoverrun", "timer_delete",
		"timerfd_create", "timerfd_settime", "timerfd_settime64",
		"timerfd_gettime", "timerfd_gettime64",
	},
	"process": {
		"fork", "vfork", "execve", "execveat",
		"wait4", "waitid", "exit", "exit_group", "prctl", "restart_syscall",
		"getpid", "getppid", "getpgid", "setpgid", "getpgrp", "getsid", "setsid",
		"getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "getgroups",
		"getuid32", "geteuid32", "getgid32", "getegid32", "getresuid32", "getresgid32", "getgroups32",
		// Changing identity is bounded by the capabilities the launcher
		// drops, as in Docker's profile.
		"setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid",
		"setgroups", "setfsuid", "setfsgid",
		"setuid32", "setgid32", "setreuid32", "setregid32", "setresuid32", "setresgid32",
		"setgroups32", "setfsuid32", "setfsgid32",
		"capget", "capset",
		"getrlimit", "setrlimit", "prlimit64", "ugetrlimit", "getrusage",
		"uname", "sysinfo", "getrandom",
		// An app may confine itself further.
		"seccomp", "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
	},
	"socket": {
		"socket", "socketpair", "bind", "connect", "listen", "accept", "accept4",
		"getsockname", "getpeername", "getsockopt", "setsockopt", "shutdown",
		"send", "sendto", "sendmsg", "sendmmsg",
		"recv", "recvfrom", "recvmsg", "recvmmsg", "recvmmsg_time64",
	},
	"poll": {
		"epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old",
		"epoll_wait", "epoll_wait_old", "epoll_pwait", "epoll_pwait2",
		"poll", "ppoll", "ppoll_time64", "select", "_newselect",
		"pselect6", "pselect6_time64",
		"pipe", "pipe2", "eventfd", "eventfd2",
	},
	"ipc": {
		// System V and POSIX IPC live in the app's IPC namespace.
		"shmget", "shmat", "shmdt", "shmctl",
		"semget", "semop", "semtimedop", "semtimedop_time64", "semctl",
		"msgget", "msgsnd", "msgrcv", "msgctl",
		"mq_open", "mq_unlink", "mq_timedsend", "mq_timedsend_time64",
		"mq_timedreceive", "mq_timedreceive_time64", "mq_notify", "mq_getsetattr",
	},
}

// Calls that Compile allows only with some arguments (see DefaultSyscalls).
const (
	ioctlCall       = "ioctl"
	cloneCall       = "clone"
	clone3Call      = "clone3"
	personalityCall = "personality"
)

// neverDefault are system calls the default policy must not allow: they
// change the system rather than the app (mounts, modules, kernels, clocks,
// keys, tracing other processes), or reach objects by handle around the
// sandbox's paths. Interfaces may still add some (mknodat for a device).
// The tests check that DefaultSyscalls and this list do not meet.
var neverDefault = []string{
	"mount", "umount2", "pivot_root", "chroot",
	"fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
	"ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
	"kexec_load", "kexec_file_load", "reboot",
	"init_module", "finit_module", "delete_module",
	"bpf", "perf_event_open", "userfaultfd", "lookup_dcookie",
	"keyctl", "add_key", "request_key",
	"unshare", "setns",
	"settimeofday", "clock_settime", "clock_settime64", "clock_adjtime", "clock_adjtime64", "adjtimex",
	"swapon", "swapoff", "acct", "quotactl", "quotactl_fd",
	"open_by_handle_at", "name_to_handle_at",
	"iopl", "ioperm", "syslog", "fanotify_init",
	"mknod", "mknodat",
	"sethostname", "setdomainname", "vhangup", "nfsservctl", "uselib", "ustat", "sysfs", "_sysctl",
	"io_uring_setup", "io_uring_enter", "io_uring_register",
}
