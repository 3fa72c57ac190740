// Package asserttest signs assertions for tests: keys, delegations
// (account-keys), app revisions and commands. Each starts from fixed
// defaults that a test changes through an edit function, so that the tests
// of every package sign the same way and say only what they change.
package asserttest

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"paddock.dev/paddock/ota/assert"
	"paddock.dev/paddock/ota/keys"
	"paddock.dev/paddock/ota/verity"
)

// The fixed times of the defaults: delegations hold from Since to Until,
// revisions are made at Since, and commands hold from a minute before Now
// to an hour after it. A test verifies at Now.
var (
	Since = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	Until = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	Now   = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
)

// Key generates a private key named name.
func Key(t testing.TB, name string) *keys.PrivateKey {
	t.Helper()
	k, err := keys.Generate(name)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Trust makes key a trusted root key of the device below dirs.Root, as
// 'paddock key trust' does.
func Trust(t testing.TB, key *keys.PrivateKey) {
	t.Helper()
	armored, err := key.Public().Armored()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Trust(armored); err != nil {
		t.Fatal(err)
	}
}

// Delegation returns an account-key, signed by signer, that lets key
// publish hello and acme-* from Since to Until for the account named as
// the key, as edit changes it (edit may be nil).
func Delegation(t testing.TB, signer, key *keys.PrivateKey, edit func(*assert.AccountKey)) []byte {
	t.Helper()
	ak := &assert.AccountKey{
		Account: key.Public().Name(),
		Role:    assert.RolePublisher,
		Names:   []string{"hello", "acme-*"},
		Since:   Since,
		Until:   Until,
		Key:     key.Public(),
	}
	if edit != nil {
		edit(ak)
	}
	a, err := assert.SignAccountKey(ak, signer)
	if err != nil {
		t.Fatal(err)
	}
	return a.Encode()
}

// OperatorDelegation returns a Delegation of key as an operator for the
// comma-separated targets names (device/NAME, group/NAME, patterns), as
// edit changes it.
func OperatorDelegation(t testing.TB, signer, key *keys.PrivateKey, names string, edit func(*assert.AccountKey)) []byte {
	t.Helper()
	return Delegation(t, signer, key, func(ak *assert.AccountKey) {
		ak.Role = assert.RoleOperator
		ak.Names = strings.Split(names, ",")
		if edit != nil {
			edit(ak)
		}
	})
}

// Revision returns revision 2 of app name, version 1.0, for arm64, of 10
// bytes, made at Since, signed by key, as edit changes it.
func Revision(t testing.TB, key *keys.PrivateKey, name string, edit func(*assert.AppRevision)) []byte {
	t.Helper()
	r := &assert.AppRevision{
		Name: name, Version: "1.0", Revision: 2, Arch: "arm64", Size: 10,
		SHA256: strings.Repeat("0f", 32), Type: "app", Timestamp: Since,
	}
	if edit != nil {
		edit(r)
	}
	a, err := assert.SignAppRevision(r, key)
	if err != nil {
		t.Fatal(err)
	}
	return a.Encode()
}

// BaseRevision returns revision 2 of base name, version 2, for arm64, of
// a 300-block SquashFS and its hash tree in chunks of 256 KiB, made at
// Since, signed by key, as edit changes it (BaseImage makes an image it
// describes).
func BaseRevision(t testing.TB, key *keys.PrivateKey, name string, edit func(*assert.BaseRevision)) []byte {
	t.Helper()
	data := int64(300 * 4096)
	size := data + verity.TreeSize(data)
	r := &assert.BaseRevision{
		Name: name, Version: "2", Revision: 2, Arch: "arm64", Size: size,
		SHA256: strings.Repeat("0f", 32), ChunkSize: 256 << 10, VerityDataSize: data,
		VerityRootHash: strings.Repeat("1e", 32), VeritySalt: "5a17", Timestamp: Since,
	}
	for range assert.ChunkCount(size, r.ChunkSize) {
		r.Chunks = append(r.Chunks, strings.Repeat("2d", 32))
	}
	if edit != nil {
		edit(r)
	}
	a, err := assert.SignBaseRevision(r, key)
	if err != nil {
		t.Fatal(err)
	}
	return a.Encode()
}

// Command returns command c1 to device/dev1, removing hello, valid from a
// minute before Now to an hour after it, signed by key, as edit changes it.
func Command(t testing.TB, key *keys.PrivateKey, edit func(*assert.Command)) []byte {
	t.Helper()
	c := &assert.Command{
		ID:        "c1",
		Target:    "device/dev1",
		Action:    "remove",
		NotBefore: Now.Add(-time.Minute),
		Expiry:    Now.Add(time.Hour),
		Body:      []byte(`{"name":"hello"}`),
	}
	if edit != nil {
		edit(c)
	}
	a, err := assert.SignCommand(c, key)
	if err != nil {
		t.Fatal(err)
	}
	return a.Encode()
}

// Bundle joins encoded assertions into one bundle, as 'paddock sign' and
// 'paddock fleet send' write them: delegations first.
func Bundle(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
