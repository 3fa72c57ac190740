package mqtt

import "strings"

// Commands run at the same time when they concern different apps, and in
// arrival order when they concern the same one: a download that crawls
// for hours holds back the commands for its app, not the fleet's pings or
// the other apps. A command for the whole device (a reboot, a base
// update) waits for every command before it and holds back every one
// after it, pings excepted, which are answered at once.

// lane is where a command waits for its turn.
type lane struct {
	name string // "app/NAME", "config", or "" for the whole device
	// exclusive commands run alone.
	exclusive bool
	// immediate commands wait for nothing.
	immediate bool
}

// laneOf says which commands cmd waits for.
func laneOf(cmd *Command) lane {
	switch cmd.Action {
	case ActionPing:
		return lane{immediate: true}
	case ActionReboot, ActionBaseUpdate:
		return lane{exclusive: true}
	case ActionConfigSet:
		return lane{name: "config"}
	}
	if cmd.App != "" {
		return lane{name: "app/" + cmd.App}
	}
	// An app command whose app the device could not tell: alone is safe.
	return lane{exclusive: true}
}

func (ln lane) String() string {
	if app, ok := strings.CutPrefix(ln.name, "app/"); ok {
		return "app " + app
	}
	if ln.name == "" {
		return "the device"
	}
	return ln.name
}

// job is an accepted command waiting for its turn.
type job struct {
	cmd  *Command
	lane lane
}

// schedule runs cmd now if nothing before it holds it back, and queues it
// otherwise, telling the operator why.
func (l *Link) schedule(cmd *Command) {
	j := &job{cmd: cmd, lane: laneOf(cmd)}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return // recorded, never started: the next Start reports it
	}
	if j.lane.immediate {
		l.startLocked(j)
		l.mu.Unlock()
		return
	}
	l.queued = append(l.queued, j)
	l.startReadyLocked()
	waiting := len(l.queued) > 0 && l.queued[len(l.queued)-1] == j
	l.mu.Unlock()
	if waiting {
		why := "queued behind the earlier commands for " + j.lane.String()
		if j.lane.exclusive {
			why = "queued until the commands before it end"
		} else if l.blockedByExclusive(j) {
			why = "queued behind a command for the whole device"
		}
		l.emit(Event{Command: cmd.ID, Type: EventProgress, Step: why}, nil)
	}
}

// blockedByExclusive reports whether an exclusive command runs or waits
// before j.
func (l *Link) blockedByExclusive(j *job) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.exclusive {
		return true
	}
	for _, q := range l.queued {
		if q == j {
			return false
		}
		if q.lane.exclusive {
			return true
		}
	}
	return false
}

// startReadyLocked starts every queued command that nothing holds back
// any more: nothing runs or waits before it on its lane, and no command
// for the whole device runs or waits before it. l.mu must be held.
func (l *Link) startReadyLocked() {
	if l.closed {
		return
	}
	busy := map[string]bool{}
	for name := range l.lanes {
		busy[name] = true
	}
	blocked := l.exclusive
	kept := l.queued[:0]
	for _, j := range l.queued {
		switch {
		case blocked:
			kept = append(kept, j)
		case j.lane.exclusive:
			if l.running == 0 && len(kept) == 0 {
				l.startLocked(j)
			} else {
				kept = append(kept, j)
			}
			blocked = true
		case busy[j.lane.name]:
			kept = append(kept, j)
		default:
			l.startLocked(j)
		}
		busy[j.lane.name] = true
	}
	clear(l.queued[len(kept):])
	l.queued = kept
}

// startLocked runs j in a goroutine of its own. l.mu must be held.
func (l *Link) startLocked(j *job) {
	if !j.lane.immediate {
		l.running++
		if l.lanes == nil {
			l.lanes = map[string]bool{}
		}
		l.lanes[j.lane.name] = true
		if j.lane.exclusive {
			l.exclusive = true
		}
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.run(j.cmd)
		if j.lane.immediate {
			return
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		l.running--
		delete(l.lanes, j.lane.name)
		if j.lane.exclusive {
			l.exclusive = false
		}
		l.startReadyLocked()
	}()
}

// failQueued answers the commands that were still waiting for their turn
// when the link closed: nothing of them happened.
func (l *Link) failQueued() {
	l.mu.Lock()
	queued := l.queued
	l.queued = nil
	l.mu.Unlock()
	for _, j := range queued {
		if j.cmd.resumed {
			continue // its change may go on: the next Start takes it up again
		}
		l.finish(j.cmd.ID, j.cmd.Expiry, Event{Command: j.cmd.ID, Type: EventFailed, Message: msgNotStarted})
	}
}
