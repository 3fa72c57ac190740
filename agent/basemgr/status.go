package basemgr

import (
	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/boot"
)

// Status reads the boot side's status (boot.ReadStatus) and adds the
// revision of each slot's base.
func (m *Manager) Status() (*apitypes.BaseStatus, error) {
	bs, err := boot.ReadStatus()
	if err != nil {
		return nil, err
	}
	s := &apitypes.BaseStatus{Running: bs.Boot.Slot, Tried: bs.Boot.Tried, Verified: bs.Boot.Verified,
		Last:     apitypes.BaseAttempt{Slot: bs.Last.Slot, Result: bs.Last.Result, Reason: bs.Last.Reason, Boots: bs.Last.Boots, Advice: bs.Last.Advice()},
		Fallback: bs.Boot.Fallback, Unverified: bs.Boot.Unverified}
	for _, sl := range bs.Slots {
		info := apitypes.BaseSlot{Name: sl.Name, State: sl.State, Why: sl.Why, Running: sl.Running}
		if r := runningBase(sl.Name); r != nil {
			info.Base, info.Version, info.Revision = r.Name, r.Version, r.Revision
		}
		s.Slots = append(s.Slots, info)
	}
	return s, nil
}

// Report is the base's part of the state the agent reports: its status,
// or nil off a paddock device.
func (m *Manager) Report() any {
	s, err := m.Status()
	if err != nil {
		return nil
	}
	return s
}
