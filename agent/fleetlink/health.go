package fleetlink

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/agent/appmgr"
	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/ota/revisions"
)

// The device's health, in the state it reports, is "ok" or "degraded"
// with problems, derived from these signals:
//
//   - changes: a change that failed (it ends in Error when a task failed,
//     once the rest of it is undone) counts until a later change of the
//     same app (of the same kind, for a change of no app) ends done, or
//     until the agent forgets it among its last changes; a change undone
//     cleanly without a failure does not count;
//   - mounts: the current revision of every app is mounted from its
//     package, as the kernel's mount table says (apps with a change in
//     progress aside: the change decides);
//   - the agent's last start: StartUp returned no error (until the next
//     start);
//   - the state: the agent can save it (state.State.Degraded);
//   - the apps: an app whose health is error (agent/health: its probe,
//     check-health hook, its own word or a crash loop) degrades the
//     device, with its reason; okay, waiting and unknown do not.

// Health values of mqtt.State.
const (
	healthOK       = "ok"
	healthDegraded = "degraded"
)

// Bounds of what the device says of its health: a state message is small.
const (
	maxProblems   = 8
	maxProblemLen = 200
)

// isMounted reports whether a revision is mounted; tests swap it.
var isMounted = revisions.IsMounted

// Health returns the device's health, "ok" or "degraded", and its
// problems, as the state reports them.
func (d *Device) Health() (string, []string) { return d.health(d.apps.List()) }

func (d *Device) health(apps []apitypes.AppInfo) (string, []string) {
	var problems []string
	d.st.Lock()
	problems = append(problems, failedChanges(d.st.Changes())...)
	busy := appsInProgress(d.st.ChangesInProgress())
	d.st.Unlock()
	for _, a := range apps {
		if !busy[a.Name] && a.Revision > 0 && !isMounted(a.Name, a.Revision) {
			problems = append(problems, fmt.Sprintf("%s revision %d is not mounted", a.Name, a.Revision))
		}
	}
	if d.StartErr != nil {
		for _, line := range strings.Split(d.StartErr.Error(), "\n") {
			problems = append(problems, "the agent's last start: "+line)
		}
	}
	if reason, _ := d.st.Degraded(); reason != "" {
		problems = append(problems, reason)
	}
	for _, a := range apps {
		if h := d.appHealth(a.Name); h != nil && h.Status == "error" {
			problems = append(problems, fmt.Sprintf("%s is unhealthy (%s): %s", a.Name, h.Source, h.Message))
		}
	}
	if len(problems) == 0 {
		return healthOK, nil
	}
	return healthDegraded, sanitize(problems)
}

// failedChanges describes the failed changes that still count: those
// that no later change of the same app (or kind) undid by ending done.
// changes are oldest first; the state must be locked.
func failedChanges(changes []*state.Change) []string {
	failed := map[string]*state.Change{}
	var order []string
	for _, chg := range changes {
		key := "kind " + chg.Kind()
		var app string
		if chg.Get("app-name", &app) == nil && app != "" {
			key = "app " + app
		}
		switch chg.Status() {
		case state.DoneStatus:
			delete(failed, key)
		case state.ErrorStatus:
			if failed[key] == nil {
				order = append(order, key)
			}
			failed[key] = chg
		}
	}
	var out []string
	for _, key := range order {
		chg := failed[key]
		if chg == nil {
			continue
		}
		failed[key] = nil // once, though the key came back
		msg := fmt.Sprintf("change %s (%s) failed", chg.ID(), chg.Summary())
		if why := appmgr.Reverted(chg); why != "" {
			msg = fmt.Sprintf("change %s (%s) reverted: %s", chg.ID(), chg.Summary(), why)
		} else if err := chg.Err(); err != nil {
			msg += ": " + err.Error()
		}
		out = append(out, msg)
	}
	return out
}

// appsInProgress returns the apps with a change in progress; the state
// must be locked.
func appsInProgress(changes []*state.Change) map[string]bool {
	busy := map[string]bool{}
	for _, chg := range changes {
		var app string
		if chg.Get("app-name", &app) == nil {
			busy[app] = true
		}
	}
	return busy
}

// sanitize makes the problems short, one line each and printable, and
// keeps at most maxProblems of them.
func sanitize(problems []string) []string {
	out := make([]string, 0, min(len(problems), maxProblems))
	for i, p := range problems {
		if i == maxProblems-1 && len(problems) > maxProblems {
			out = append(out, fmt.Sprintf("and %d more problems", len(problems)-i))
			break
		}
		out = append(out, shorten(printable(p), maxProblemLen))
	}
	return out
}

// printable replaces control and other non-printable runes, and runs of
// spaces, with one space.
func printable(s string) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) || unicode.IsSpace(r) {
			if !space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = true
			continue
		}
		space = false
		b.WriteRune(r)
	}
	return strings.TrimSpace(b.String())
}

// shorten cuts s to at most n bytes, on a rune boundary, marking the cut.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// appHealth returns the health of app, or nil when nothing judges it.
func (d *Device) appHealth(app string) *apitypes.AppHealth {
	if d.AppHealth == nil {
		return nil
	}
	return d.AppHealth(app)
}
