package assert

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"paddock.dev/paddock/ota/keys"
)

// The assertion types this package knows.
const (
	AccountKeyType  = "account-key"
	AppRevisionType = "app-revision"
)

// Roles an account-key can delegate.
const (
	RolePublisher = "publisher"
	RoleOperator  = "operator"
)

// GrantRoot is the grant of an account-key that lets the delegated
// publisher's apps run as root (user: root in their app.yaml).
const GrantRoot = "root"

// GrantClassic is the grant of an account-key that lets the delegated
// publisher's apps run unconfined (confinement: classic in their app.yaml).
const GrantClassic = "classic"

// AllGrants lists what an account-key's grants header may hold.
var AllGrants = []string{GrantRoot, GrantClassic}

// Package types an app-revision can describe.
var packageTypes = []string{"app", "gadget", "base"}

var (
	validName        = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`) })
	validArch        = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`) })
	validFingerprint = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([0-9A-F]{40}|[0-9A-F]{64})$`) })
	validSHA256      = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9a-f]{64}$`) })
	validVersion     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.+~_-]*$`) })
)

// AccountKey is an account-key assertion: a root key delegates a key to an
// account, for a role, names and time window.
type AccountKey struct {
	// SignKey is the fingerprint of the delegating (root) key.
	SignKey string
	// Account names who holds the delegated key.
	Account string
	// Fingerprint is the delegated key's fingerprint.
	Fingerprint string
	// Role is RolePublisher or RoleOperator.
	Role string
	// Names are path.Match globs of the package names a publisher key may
	// sign, or of the command targets an operator key may command.
	Names []string
	// Since and Until bound the delegation; a zero Until never ends.
	Since, Until time.Time
	// Takeover lets the key publish names another key published before.
	Takeover bool
	// Grants are the privileges the root grants the publisher's apps
	// beyond the default: GrantRoot lets them run as root.
	Grants []string
	// Key is the delegated public key, from the body.
	Key *keys.PublicKey
}

// Allows reports whether name matches one of the delegation's globs
// (path.Match; a glob "*" alone matches every name, "/" included, so that
// it covers every command target).
func (k *AccountKey) Allows(name string) bool {
	for _, g := range k.Names {
		if ok, _ := path.Match(g, name); ok || g == "*" {
			return true
		}
	}
	return false
}

// ParseAccountKey returns the typed content of an account-key assertion,
// checking every value.
func ParseAccountKey(a *Assertion) (*AccountKey, error) {
	if a.Type() != AccountKeyType {
		return nil, fmt.Errorf("cannot parse %s as %s", a.Type(), AccountKeyType)
	}
	k := &AccountKey{
		SignKey:     a.SignKey(),
		Account:     a.Header("account"),
		Fingerprint: a.Header("public-key-fingerprint"),
		Role:        a.Header("role"),
	}
	c := &checker{a: a}
	c.check(!validName().MatchString(k.Account), "account %q", k.Account)
	c.check(!validFingerprint().MatchString(k.Fingerprint), "public-key-fingerprint %q", k.Fingerprint)
	c.check(k.Role != RolePublisher && k.Role != RoleOperator, "role %q (want %s or %s)", k.Role, RolePublisher, RoleOperator)
	k.Names, c.err = parseNames(a.Header("names"), k.Role, c.err)
	k.Since = c.time("since")
	if a.Header("until") != "" {
		k.Until = c.time("until")
		c.check(c.err == nil && !k.Until.After(k.Since), "until %s is not after since %s", a.Header("until"), a.Header("since"))
	}
	switch a.Header("takeover") {
	case "":
	case "true":
		k.Takeover = true
	default:
		c.check(true, "takeover %q (want true, or no takeover header)", a.Header("takeover"))
	}
	k.Grants, c.err = parseGrants(a.Header("grants"), k.Role, c.err)
	if c.err != nil {
		return nil, c.err
	}
	var err error
	if k.Key, err = keys.ParsePublicKey(a.body); err != nil {
		return nil, fmt.Errorf("invalid account-key body: %w", err)
	}
	if got := k.Key.Fingerprint(); got != k.Fingerprint {
		return nil, fmt.Errorf("invalid account-key: body holds key %s, not public-key-fingerprint %s", got, k.Fingerprint)
	}
	return k, nil
}

// Granted reports whether the delegation grants g, such as GrantRoot.
func (k *AccountKey) Granted(g string) bool { return slices.Contains(k.Grants, g) }

// parseGrants parses the optional grants header: comma-separated known
// grants, each once, for a publisher only.
func parseGrants(v, role string, err error) ([]string, error) {
	if err != nil || v == "" {
		return nil, err
	}
	if role != RolePublisher {
		return nil, fmt.Errorf("invalid account-key: grants %q for the %s role (only a publisher's delegation grants anything)", v, role)
	}
	var out []string
	for _, g := range strings.Split(v, ",") {
		if !slices.Contains(AllGrants, g) {
			return nil, fmt.Errorf("invalid account-key: unknown grant %q (want %s)", g, strings.Join(AllGrants, ", "))
		}
		if slices.Contains(out, g) {
			return nil, fmt.Errorf("invalid account-key: grant %q is listed twice", g)
		}
		out = append(out, g)
	}
	return out, nil
}

// parseNames parses the names header: comma-separated globs over package
// names for a publisher, over command targets ("device/ID", "group/NAME")
// for an operator.
func parseNames(v, role string, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	names := strings.Split(v, ",")
	for _, g := range names {
		if role == RoleOperator {
			if g == "" || strings.Contains(g, " ") {
				return nil, fmt.Errorf("invalid account-key: names %q (want comma-separated globs such as device/*,group/lab)", v)
			}
		} else if g == "" || strings.ContainsAny(g, " /") {
			return nil, fmt.Errorf("invalid account-key: names %q (want comma-separated globs such as hello,acme-*)", v)
		}
		if _, err := path.Match(g, ""); err != nil {
			return nil, fmt.Errorf("invalid account-key: names glob %q: %w", g, err)
		}
	}
	return names, nil
}

// parseTime parses header name of a as a canonical RFC 3339 UTC time.
func parseTime(a *Assertion, name string, err error) (time.Time, error) {
	if err != nil {
		return time.Time{}, err
	}
	v := a.Header(name)
	t, perr := time.Parse(time.RFC3339, v)
	if perr != nil || FormatTime(t) != v {
		return time.Time{}, fmt.Errorf("invalid %s: %s %q (want a UTC time such as 2026-01-02T15:04:05Z)", a.Type(), name, v)
	}
	return t, nil
}

// FormatTime formats t as assertions hold times: RFC 3339 in UTC, to the second.
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// headers returns the account-key headers of k.
func (k *AccountKey) headers() []Header {
	hs := []Header{
		{"account", k.Account},
		{"public-key-fingerprint", k.Key.Fingerprint()},
		{"role", k.Role},
		{"names", strings.Join(k.Names, ",")},
		{"since", FormatTime(k.Since)},
	}
	if !k.Until.IsZero() {
		hs = append(hs, Header{"until", FormatTime(k.Until)})
	}
	if k.Takeover {
		hs = append(hs, Header{"takeover", "true"})
	}
	if len(k.Grants) > 0 {
		hs = append(hs, Header{"grants", strings.Join(k.Grants, ",")})
	}
	return hs
}

// SignAccountKey makes an account-key assertion delegating k.Key, signed
// by root. k.Fingerprint and k.SignKey are ignored.
func SignAccountKey(k *AccountKey, root *keys.PrivateKey) (*Assertion, error) {
	if k.Key == nil {
		return nil, fmt.Errorf("internal error: account-key without a key")
	}
	body, err := k.Key.Armored()
	if err != nil {
		return nil, err
	}
	return Sign(AccountKeyType, k.headers(), body, root)
}

// AppRevision is an app-revision assertion: one revision of a package and
// the size and digest of its file.
type AppRevision struct {
	// SignKey is the fingerprint of the publisher's key.
	SignKey string
	// AuthorityID is the name the publisher's key gives itself.
	AuthorityID string
	Name        string
	Version     string
	Revision    int
	Arch        string
	Size        int64
	// SHA256 is the lowercase hex digest of the package file.
	SHA256 string
	// Type is app, gadget or base (the package-type header).
	Type      string
	Timestamp time.Time
}

// ParseAppRevision returns the typed content of an app-revision assertion,
// checking every value.
func ParseAppRevision(a *Assertion) (*AppRevision, error) {
	if a.Type() != AppRevisionType {
		return nil, fmt.Errorf("cannot parse %s as %s", a.Type(), AppRevisionType)
	}
	r := &AppRevision{
		SignKey:     a.SignKey(),
		AuthorityID: a.AuthorityID(),
		Name:        a.Header("name"),
		Version:     a.Header("version"),
		Arch:        a.Header("arch"),
		SHA256:      a.Header("sha256"),
		Type:        a.Header("package-type"),
	}
	c := &checker{a: a}
	rev, size := c.revision(r.Name, r.Version, r.Arch, r.SHA256)
	r.Revision, r.Size = int(rev), size
	c.check(!isPackageType(r.Type), "package-type %q (want app, gadget or base)", r.Type)
	r.Timestamp = c.time("timestamp")
	if c.err != nil {
		return nil, c.err
	}
	return r, nil
}

func isPackageType(t string) bool {
	for _, p := range packageTypes {
		if t == p {
			return true
		}
	}
	return false
}

// SignAppRevision makes an app-revision assertion for r, signed by key.
// r.SignKey and r.AuthorityID are ignored.
func SignAppRevision(r *AppRevision, key *keys.PrivateKey) (*Assertion, error) {
	hs := append(revisionHeaders(r.Name, r.Version, r.Revision, r.Arch, r.Size, r.SHA256),
		Header{"package-type", r.Type},
		Header{"timestamp", FormatTime(r.Timestamp)},
	)
	return Sign(AppRevisionType, hs, nil, key)
}
