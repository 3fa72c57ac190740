package policy

import (
	"paddock.dev/paddock/confine/denials"
	"paddock.dev/paddock/gadget/interfaces"
)

// DenialCatalog is the interface catalog as the hints of 'paddock debug
// denials' need it.
func DenialCatalog() denials.Catalog {
	var c denials.Catalog
	for _, i := range interfaces.All() {
		d := i.Denials
		c = append(c, denials.Rule{
			Plug: i.Name, Syscalls: d.Syscalls, Capabilities: d.Capabilities,
			Families: d.Families, Operations: d.Operations, Paths: d.Paths,
		})
	}
	return c
}
