package main

import (
	"strings"
	"testing"

	"paddock.dev/paddock/internal/arch"
	"paddock.dev/paddock/ota/assert"
	"paddock.dev/paddock/ota/assert/asserttest"
)

// TestCheckBootBase: what init mounts through dm-verity comes from an
// assertion that checks against the initramfs's keys, directly or through
// a delegation, for this architecture; the delegation is checked at the
// time the base was signed, not the device's clock (unset at boot).
func TestCheckBootBase(t *testing.T) {
	root, pub, other := asserttest.Key(t, "root"), asserttest.Key(t, "pub"), asserttest.Key(t, "other")
	armored, err := root.Public().Armored()
	if err != nil {
		t.Fatal(err)
	}
	native := func(r *assert.BaseRevision) { r.Arch = arch.Native() }
	delegated := asserttest.Bundle(asserttest.Delegation(t, root, pub, func(k *assert.AccountKey) { k.Names = []string{"paddock-base"} }), asserttest.BaseRevision(t, pub, "paddock-base", native))
	b, err := checkBootBase(delegated, [][]byte{armored})
	if err != nil {
		t.Fatal(err)
	}
	if b.RootHash != strings.Repeat("1e", 32) || b.Salt != "5a17" || b.DataSize != 300*4096 || b.Revision != "2" {
		t.Errorf("got %+v, want the assertion's verity values", *b)
	}
	refused := map[string][]byte{
		"untrusted signer":   asserttest.BaseRevision(t, other, "paddock-base", native),
		"other architecture": asserttest.Bundle(asserttest.Delegation(t, root, pub, func(k *assert.AccountKey) { k.Names = []string{"paddock-base"} }), asserttest.BaseRevision(t, pub, "paddock-base", func(r *assert.BaseRevision) { r.Arch = "riscv64" })),
		"no delegation":      asserttest.BaseRevision(t, pub, "paddock-base", native),
		"not an assertion":   []byte("hello"),
	}
	for name, bundle := range refused {
		if _, err := checkBootBase(bundle, [][]byte{armored}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
