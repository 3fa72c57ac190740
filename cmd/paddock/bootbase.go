package main

import (
	"errors"
	"fmt"
	"time"

	"paddock.dev/paddock/boot"
	"paddock.dev/paddock/internal/arch"
	"paddock.dev/paddock/ota/assert"
	"paddock.dev/paddock/ota/keys"
	"paddock.dev/paddock/ota/trust"
)

// Init checks a slot's base-revision assertion with the trust rules of
// package trust; package boot cannot import them itself.
func init() { boot.CheckBase = checkBootBase }

// checkBootBase checks the assertion bundle of a slot against the
// initramfs's trusted root keys. The time it is checked at is the time
// the base-revision was signed: at boot the clock may not be set yet (no
// RTC), and a base that was validly signed must keep booting after its
// publisher's delegation expires; what matters here is that the chain
// from the trusted root to the base's root hash holds.
func checkBootBase(bundle []byte, armored [][]byte) (*boot.BaseInfo, error) {
	var trusted []*keys.PublicKey
	for _, a := range armored {
		k, err := keys.ParsePublicKey(a)
		if err != nil {
			return nil, fmt.Errorf("cannot read a trusted key of the initramfs: %w", err)
		}
		trusted = append(trusted, k)
	}
	signedAt, err := baseTimestamp(bundle)
	if err != nil {
		return nil, err
	}
	b, err := trust.CheckBase(bundle, trusted, signedAt, arch.Native(), trust.Running{})
	if err != nil {
		return nil, err
	}
	return &boot.BaseInfo{
		Name: b.Name, Revision: fmt.Sprint(b.Revision), Version: b.Version, Arch: "",
		RootHash: b.VerityRootHash, Salt: b.VeritySalt, DataSize: b.VerityDataSize,
	}, nil
}

// baseTimestamp returns when the bundle's base-revision was signed.
func baseTimestamp(bundle []byte) (t0 time.Time, err error) {
	as, err := assert.DecodeBundle(bundle)
	if err != nil {
		return t0, err
	}
	for _, a := range as {
		if a.Type() == assert.BaseRevisionType {
			r, err := assert.ParseBaseRevision(a)
			if err != nil {
				return t0, err
			}
			return r.Timestamp, nil
		}
	}
	return t0, errors.New("no base-revision in the assertion")
}
