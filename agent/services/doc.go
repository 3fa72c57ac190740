// Package services is the agent's service manager: it supervises the
// commands that apps declare with daemon: (simple, oneshot or notify).
//
// # Starting
//
// The services of an app's current revision start when the agent starts
// and when an install, refresh or revert made a revision current (Ensure
// sees the current link change once the app has no change in progress; a
// change that manages services itself, such as a health-gated refresh,
// calls StopApp and StartApp). Within an app they start in after: order:
// a service starts once each service it is after has started (a notify
// service: said READY=1; a oneshot: ended with status 0).
//
// Each run of a service is one 'paddock run APP.SVC' launcher process,
// the very launch a user gets (same policy, cgroup, seccomp, AppArmor,
// user, kept sandbox), started by the agent in a session and process
// group of its own, with its standard output and error on the service's
// log pipe. The launcher forks the service into the sandbox and waits for
// it, so the launcher's exit status is the service's (128+N for signal N).
// Once the sandbox is built, a service's Go launcher executes itself again
// so that the C fast path of 'paddock run' (confine/launch/fastpath.c)
// takes over as the service's parent: a few hundred KiB instead of the Go
// runtime's megabytes, for as long as the service runs (notify services
// keep the Go launcher, which passes their notify pipe on).
//
// # Re-adoption
//
// Services are not children that die with the agent: the launcher has its
// own session, so a signal to the agent's group does not reach it, and
// nothing ties its life to the agent's. The agent records each run in the
// run directory (a tmpfs: a boot starts fresh), /run/paddock/services/
// APP.SVC.json: the launcher's PID and start time (so a recycled PID is
// never mistaken for it). When the agent starts (after a restart, an
// upgrade or a kill -9), it re-adopts every recorded run whose launcher
// still has that start time: it opens a pidfd on it and polls it, and the
// service keeps its PID. A re-adopted launcher is no longer the agent's
// child, so its exit status goes to whoever reaps it (init); the launcher
// therefore also writes the status to the file that $PADDOCK_SERVICE_STATUS
// names (APP.SVC.status beside the record) before it exits, and the agent
// reads it from there. A launcher killed by SIGKILL writes nothing: the
// end then counts as a failure with an unknown status (-1).
//
// The log pipe survives the agent too: it is a FIFO beside the record,
// which the launcher and the service hold open for reading and writing,
// so their writes never fail for want of a reader while the agent is
// away (they block once the pipe's buffer is full, until the agent is
// back and drains it).
//
// # Watching without polling
//
// The agent waits for each launcher in a goroutine of its own: wait4 for
// its children, poll(2) on a pidfd for re-adopted launchers. Nothing
// wakes the agent while services run quietly: there is no polling loop.
// Restart delays are timers.
//
// # Restarts
//
// restart: on-failure (the default) restarts a service that ended with a
// non-zero status or a signal; always restarts it whatever the status;
// never leaves it ended. The first restart is immediate, then the delay
// doubles from 250 ms up to 30 s; it is reset once a run has lasted 10 s.
// A service that failed 5 times in a row within its first 10 s is in a
// crash loop (Status says so, and the health manager counts it unhealthy).
//
// A service that ends while a change works on its app and has taken its
// revision away (a remove, a revert, a refresh's switch) is not restarted
// into it; once the change is over Ensure starts the current revision's.
//
// # Stopping
//
// A stop sends SIGTERM to the launcher's process group, which holds the
// launcher, the service and whatever the service started (unless it made
// a group of its own), then SIGKILL to the group after the service's
// stop-timeout (10 s by default). 'paddock stop' also records the service
// as disabled in the agent's state: it stays stopped across agent restarts
// and boots until 'paddock start'.
//
// # Logs
//
// The agent reads each service's pipe and writes its lines, each with a
// timestamp, to /var/lib/paddock/logs/APP/SVC.log (root only), rotated to
// SVC.log.1 at 1 MiB, so a service's log never takes more than 2 MiB.
// A service that writes faster than the log's rate allows (64 KiB/s on
// average, bursts of 256 KiB) has lines dropped, and the log says how many.
package services
