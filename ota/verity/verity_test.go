package verity

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

func randomData(blocks int) []byte {
	b := make([]byte, blocks*BlockSize)
	r := rand.New(rand.NewPCG(uint64(blocks), 7))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestBuildMatchesVeritysetup checks the tree and root hash, byte for
// byte, against veritysetup's for sizes around the level boundaries.
func TestBuildMatchesVeritysetup(t *testing.T) {
	vs, err := exec.LookPath("veritysetup")
	if err != nil {
		t.Skip("veritysetup not installed (apt-get install cryptsetup-bin): nothing to compare with")
	}
	salt := []byte{0xde, 0xad, 0xbe, 0xef}
	for _, blocks := range []int{1, 2, 128, 129, 300, 128*128 + 1} {
		t.Run(strconv.Itoa(blocks), func(t *testing.T) {
			data := randomData(blocks)
			img := filepath.Join(t.TempDir(), "img")
			if err := os.WriteFile(img, data, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(vs, "format", "--no-superblock", "--format=1", "--hash=sha256",
				"--data-block-size=4096", "--hash-block-size=4096", "--salt="+hex.EncodeToString(salt),
				"--hash-offset="+strconv.Itoa(len(data)), img, img).CombinedOutput()
			if err != nil {
				t.Fatalf("veritysetup: %v: %s", err, out)
			}
			m := regexp.MustCompile(`Root hash:\s+([0-9a-f]{64})`).FindSubmatch(out)
			if m == nil {
				t.Fatalf("no root hash in veritysetup's output: %s", out)
			}
			tree, err := Build(bytes.NewReader(data), int64(len(data)), salt)
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(tree.Root); got != string(m[1]) {
				t.Errorf("got root %s, want veritysetup's %s", got, m[1])
			}
			full, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := tree.Bytes(), full[len(data):]; !bytes.Equal(got, want) {
				t.Errorf("got a tree of %d bytes, want veritysetup's %d bytes (equal: false)", len(got), len(want))
			}
			if got, want := tree.Size(), TreeSize(int64(len(data))); got != want {
				t.Errorf("got tree size %d, TreeSize says %d", got, want)
			}
		})
	}
}

// TestBuildStructure checks the layout without veritysetup: the root is
// the hash of the salt and the top block, which comes first.
func TestBuildStructure(t *testing.T) {
	salt := []byte("salt")
	data := randomData(200)
	tree, err := Build(bytes.NewReader(data), int64(len(data)), salt)
	if err != nil {
		t.Fatal(err)
	}
	b := tree.Bytes()
	if got, want := int64(len(b)), TreeSize(int64(len(data))); got != want || got != 3*BlockSize {
		t.Fatalf("got tree of %d bytes, want %d (3 blocks)", got, want)
	}
	top := sha256.Sum256(append(append([]byte{}, salt...), b[:BlockSize]...))
	if !bytes.Equal(tree.Root, top[:]) {
		t.Errorf("got root %x, want sha256(salt || first block) %x", tree.Root, top)
	}
	first := sha256.Sum256(append(append([]byte{}, salt...), data[:BlockSize]...))
	if !bytes.Equal(b[BlockSize:BlockSize+32], first[:]) {
		t.Errorf("got level 0 starting %x, want the first data block's hash %x", b[BlockSize:BlockSize+32], first)
	}
}

func TestBuildRefusesBadSizes(t *testing.T) {
	for _, size := range []int64{0, -4096, 100, 4097} {
		if _, err := Build(bytes.NewReader(make([]byte, 8192)), size, nil); err == nil {
			t.Errorf("size %d: got no error, want one", size)
		}
	}
	if _, err := Build(bytes.NewReader(make([]byte, 4096)), 8192, nil); err == nil {
		t.Error("short data: got no error, want one")
	}
	if _, err := Build(bytes.NewReader(make([]byte, 4096)), 4096, make([]byte, MaxSalt+1)); err == nil {
		t.Error("long salt: got no error, want one")
	}
}
