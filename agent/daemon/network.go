package daemon

import (
	"paddock.dev/paddock/agent/config"
	"paddock.dev/paddock/boot"
	"paddock.dev/paddock/internal/dirs"
)

// configureNetwork applies agent.yaml's network section, in the appliance
// only: when the agent runs on the real root of a device that init booted
// (it left the boot record). On a developer's host, or in a test's root,
// the agent never touches the network.
func (d *Daemon) configureNetwork(c config.Network) {
	d.net.Configure(c, notAppliance())
}

// retryLinkOnNetwork makes the fleet link try to connect as soon as an
// interface gets its address, instead of after its backoff.
func (d *Daemon) retryLinkOnNetwork() {
	if d.link != nil {
		d.net.OnUp = d.link.Retry
	}
}

// notAppliance says why the agent is not the appliance's, or "".
func notAppliance() string {
	if dirs.Root != "/" {
		return "not the appliance: the agent runs in the root " + dirs.Root
	}
	if _, err := boot.Running(); err != nil {
		return "not the appliance: paddock init did not boot this machine"
	}
	return ""
}
