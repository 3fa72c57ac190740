package images

import (
	"bytes"
	"encoding/binary"
)

// moduleSigMagic ends a kernel module with an appended signature.
const moduleSigMagic = "~Module signature appended~\n"

// moduleSigInfoLen is the size of struct module_signature, between the
// signature and the magic: algo, hash, id_type, signer_len, key_id_len,
// 3 bytes of padding and the signature's length (big-endian uint32).
const moduleSigInfoLen = 12

// stripModuleSignature returns a module without its appended signature,
// and whether it had one. The initramfs drops them by default: the kernel
// checks a signature on every load (a SHA-256 of the whole module: a
// tenth of a second of boot for ext4 and its friends under TCG) unless it
// is absent, and a signature there protects nothing the unsigned /init
// beside it does not already control. A kernel that enforces signatures
// (module.sig_enforce, or lockdown under Secure Boot) refuses unsigned
// modules: keep them for it (--keep-module-signatures).
func stripModuleSignature(data []byte) ([]byte, bool) {
	if !bytes.HasSuffix(data, []byte(moduleSigMagic)) {
		return data, false
	}
	end := len(data) - len(moduleSigMagic)
	if end < moduleSigInfoLen {
		return data, false
	}
	info := data[end-moduleSigInfoLen : end]
	sigLen := int64(binary.BigEndian.Uint32(info[8:]))
	start := int64(end-moduleSigInfoLen) - sigLen
	// PKCS#7, the only kind the kernel makes: signer and key id are in the
	// signature, so their lengths are zero.
	if info[2] != 2 || info[3] != 0 || info[4] != 0 || start < 0 {
		return data, false
	}
	return data[:start], true
}
