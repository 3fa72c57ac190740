package fleetlink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/mqtt"
)

// connection starts the change that connects or disconnects the plug
// APP:PLUG that the command names, and waits for it.
func (d *Device) connection(ctx context.Context, cmd *mqtt.Command, progress func(string, int)) (json.RawMessage, error) {
	if d.Interfaces == nil {
		return nil, fmt.Errorf("%s: %w", cmd.Action, errUnsupported)
	}
	a := cmd.Args
	if a.Name == "" {
		return nil, fmt.Errorf("%s needs a plug (APP:PLUG)", cmd.Action)
	}
	var id string
	var err error
	if cmd.Action == mqtt.ActionConnect {
		id, err = d.Interfaces.Connect(a.Name, a.Slot, cmd.ID)
	} else {
		if a.Slot != "" {
			return nil, errors.New("disconnect takes no slot (a plug has one connection)")
		}
		id, err = d.Interfaces.Disconnect(a.Name, cmd.ID)
	}
	if err != nil {
		return nil, err
	}
	return d.follow(ctx, cmd, id, progress)
}

// connectionOutcome is the result of a finished connect or disconnect:
// the plug and the slot it was connected to or from; the state must be
// locked.
func (d *Device) connectionOutcome(chg *state.Change) (json.RawMessage, error) {
	var plug string
	var conn struct {
		Slot string `json:"slot"`
	}
	chg.Get("plug", &plug)
	chg.Get("connection", &conn)
	return json.Marshal(map[string]string{"plug": plug, "slot": conn.Slot, "action": chg.Kind()})
}

// connections reports the plugs of the installed apps and their slots.
func (d *Device) connections() []mqtt.ConnectionState {
	if d.Interfaces == nil {
		return nil
	}
	conns, err := d.Interfaces.Connections("")
	if err != nil {
		return nil
	}
	var out []mqtt.ConnectionState
	for _, c := range conns {
		out = append(out, mqtt.ConnectionState{Interface: c.Interface, Plug: c.Plug, Slot: c.Slot, By: c.By, Hardware: c.Hardware})
	}
	return out
}

// unconnectedPlugs lists the hardware plugs of app that wait for an
// operator: a refresh that added one says so in its result, which 'fleet
// rollout status' shows.
func (d *Device) unconnectedPlugs(app string) []string {
	if d.Interfaces == nil {
		return nil
	}
	conns, err := d.Interfaces.Connections(app)
	if err != nil {
		return nil
	}
	var out []string
	for _, c := range conns {
		if c.Hardware && c.Slot == "" {
			out = append(out, c.Plug)
		}
	}
	return out
}
