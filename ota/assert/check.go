package assert

import (
	"fmt"
	"strconv"
	"time"
)

// checker checks the headers of one assertion of a kind, keeping the first
// error: "invalid KIND: what is wrong".
type checker struct {
	a   *Assertion
	err error
}

// check records the error format says when bad, unless one came before.
func (c *checker) check(bad bool, format string, args ...any) {
	if bad && c.err == nil {
		c.err = fmt.Errorf("invalid "+c.a.Type()+": "+format, args...)
	}
}

// positive returns header name as a positive integer, written canonically.
func (c *checker) positive(name string) int64 {
	v := c.a.Header(name)
	n, _ := strconv.ParseInt(v, 10, 64)
	c.check(n <= 0 || strconv.FormatInt(n, 10) != v, "%s %q (want a positive integer)", name, v)
	return n
}

// revision checks the headers that app-revision and base-revision share,
// and returns the revision and the size.
func (c *checker) revision(name, version, arch, sha256 string) (rev, size int64) {
	c.check(len(name) > 64 || !validName().MatchString(name), "name %q", name)
	c.check(len(version) > 64 || !validVersion().MatchString(version), "version %q", version)
	rev = c.positive("revision")
	// Revisions are ints: 32 bits on armv7, where a larger one would wrap.
	c.check(rev > maxRevision, "revision %d (want at most %d)", rev, maxRevision)
	c.check(len(arch) > 32 || !validArch().MatchString(arch), "arch %q", arch)
	size = c.positive("size")
	c.check(!validSHA256().MatchString(sha256), "sha256 %q (want 64 lowercase hex digits)", sha256)
	return rev, size
}

// time returns header name as a canonical RFC 3339 UTC time.
func (c *checker) time(name string) time.Time {
	t, err := parseTime(c.a, name, c.err)
	c.err = err
	return t
}

// maxRevision is the largest revision an assertion may carry.
const maxRevision = 1<<31 - 1

// revisionHeaders are the headers that app-revision and base-revision
// begin with, in their order.
func revisionHeaders(name, version string, revision int, arch string, size int64, sha256 string) []Header {
	return []Header{
		{"name", name},
		{"version", version},
		{"revision", strconv.Itoa(revision)},
		{"arch", arch},
		{"size", strconv.FormatInt(size, 10)},
		{"sha256", sha256},
	}
}
