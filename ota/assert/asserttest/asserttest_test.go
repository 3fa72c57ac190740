package asserttest

import (
	"testing"

	"paddock.dev/paddock/internal/dirs/dirstest"
	"paddock.dev/paddock/ota/assert"
	"paddock.dev/paddock/ota/keys"
	"paddock.dev/paddock/ota/trust"
)

// TestDefaultsVerify checks that the defaults make a chain the real
// checks accept at Now, and that each edit lands.
func TestDefaultsVerify(t *testing.T) {
	root, pub, ops := Key(t, "root"), Key(t, "pub"), Key(t, "ops")
	trusted := []*keys.PublicKey{root.Public()}
	r, err := trust.CheckRevision(Bundle(Delegation(t, root, pub, nil), Revision(t, pub, "acme-x", func(r *assert.AppRevision) { r.Revision = 7 })), trusted, Now, "")
	if err != nil || r.Name != "acme-x" || r.Revision != 7 {
		t.Errorf("got %+v, %v, want revision 7 of acme-x", r, err)
	}
	c, err := trust.CheckCommand(Bundle(OperatorDelegation(t, root, ops, "device/*", nil), Command(t, ops, func(c *assert.Command) { c.ID = "c9" })), trusted, Now, "dev1", nil)
	if err != nil || c.ID != "c9" || c.Target != "device/dev1" {
		t.Errorf("got %+v, %v, want command c9 for device/dev1", c, err)
	}
}

func TestTrust(t *testing.T) {
	dirstest.SetRoot(t)
	root := Key(t, "root")
	Trust(t, root)
	got, err := keys.LoadTrusted()
	if err != nil || len(got) != 1 || got[0].Fingerprint() != root.Public().Fingerprint() {
		t.Errorf("got trusted %v, %v, want root's key alone", got, err)
	}
}
