package fleetlink

import (
	"context"
	"encoding/json"
	"errors"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/agent/basemgr"
	"paddock.dev/paddock/mqtt"
)

// Base is what the fleet link asks of the base manager (basemgr.Manager).
type Base interface {
	Update(opts basemgr.UpdateOptions) (string, error)
	Status() (*apitypes.BaseStatus, error)
}

var _ Base = (*basemgr.Manager)(nil)

// baseUpdate starts the change that writes the base into the other slot,
// tries it after a reboot and commits it, and waits for it: the answer
// comes after the reboot (Resume), done once committed, or failed with
// "rolled back: REASON".
func (d *Device) baseUpdate(ctx context.Context, cmd *mqtt.Command, progress func(string, int)) (json.RawMessage, error) {
	if d.Base == nil {
		return nil, errors.New("base-update: this agent has no A/B base slots")
	}
	a := cmd.Args
	if a.Assertions == "" || len(a.URLs) == 0 {
		return nil, errors.New("base-update needs the base's assertions and at least one URL")
	}
	limits, err := d.limits(a.Download)
	if err != nil {
		return nil, err
	}
	id, err := d.Base.Update(basemgr.UpdateOptions{Assertions: []byte(a.Assertions), URLs: a.URLs, Limits: &limits, Command: cmd.ID})
	if err != nil {
		return nil, err
	}
	return d.follow(ctx, cmd, id, progress)
}

// baseState is the base's part of the reported state, or nil.
func (d *Device) baseState() *mqtt.BaseState {
	if d.Base == nil {
		return nil
	}
	st, err := d.Base.Status()
	if err != nil {
		return nil
	}
	b := &mqtt.BaseState{Running: st.Running, Verified: st.Verified, Slots: map[string]string{},
		LastSlot: st.Last.Slot, LastResult: st.Last.Result, LastReason: st.Last.Reason, LastAdvice: st.Last.Advice}
	for _, s := range st.Slots {
		b.Slots[s.Name] = s.State
		if s.Why != "" {
			b.Slots[s.Name] += ": " + s.Why
		}
		if s.Running {
			b.Revision, b.Version = s.Revision, s.Version
		}
	}
	return b
}

// baseOutcome is the answer of a finished base update: the base and the
// slot it committed.
func baseOutcome(data map[string]any) (json.RawMessage, error) {
	return json.Marshal(data)
}
