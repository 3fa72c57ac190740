package fleet

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"paddock.dev/paddock/internal/cli"
	"paddock.dev/paddock/mqtt"
	"paddock.dev/paddock/ota/assert"
	"paddock.dev/paddock/ota/keys"
)

// timeNow is the clock of commands; tests swap it.
var timeNow = time.Now

// httpClient fetches the assertions of a package next to its URL.
var httpClient = &http.Client{Timeout: 30 * time.Second}

// operator signs commands: the operator's key, and the delegation by
// which a root key the devices trust vouches for it.
type operator struct {
	key        *keys.PrivateKey
	delegation []byte // account-key assertions, encoded
}

// connectOperator loads the operator key called name with the delegation
// in the file delegationFile, then connects to broker: what send and
// rollout both start with.
func connectOperator(name, delegationFile, broker string, stderr io.Writer) (*operator, *link, error) {
	delegation, err := os.ReadFile(delegationFile)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read delegation: %w", err)
	}
	op, err := loadOperator(name, delegation, delegationFile)
	if err != nil {
		return nil, nil, err
	}
	l, err := dial(broker, stderr)
	if err != nil {
		return nil, nil, err
	}
	return op, l, nil
}

// loadOperator finds the key called name in the key store and checks that
// delegation delegates it as operator.
func loadOperator(name string, delegation []byte, from string) (*operator, error) {
	store, err := keys.DefaultStore()
	if err != nil {
		return nil, err
	}
	key, err := store.Private(name)
	if err != nil {
		return nil, err
	}
	as, err := assert.DecodeBundle(delegation)
	if err != nil {
		return nil, fmt.Errorf("cannot read delegation %s: %w", from, err)
	}
	fp := key.Public().Fingerprint()
	for _, a := range as {
		if a.Type() != assert.AccountKeyType {
			return nil, fmt.Errorf("cannot use delegation %s: it holds a %s assertion, want only account-key assertions (from 'paddock key delegate --role operator')", from, a.Type())
		}
	}
	for _, a := range as {
		if ak, err := assert.ParseAccountKey(a); err == nil && ak.Fingerprint == fp && ak.Role == assert.RoleOperator {
			return &operator{key: key, delegation: assert.EncodeBundle(as)}, nil
		}
	}
	return nil, fmt.Errorf("cannot use delegation %s: it does not delegate key %s (%s) as operator (ask the root key holder for 'paddock key delegate --to %s --role operator')",
		from, name, keys.Short(fp), name)
}

// sign makes a command assertion with a fresh random ID, valid from a
// minute ago (clocks drift) for expires.
func (o *operator) sign(target, action string, args mqtt.Args, expires time.Duration) (*assert.Assertion, error) {
	body, err := json.Marshal(args)
	if err != nil {
		return nil, fmt.Errorf("internal error: %w", err)
	}
	now := timeNow().UTC().Truncate(time.Second)
	c := &assert.Command{
		ID:        randomHex(8),
		Target:    target,
		Action:    action,
		NotBefore: now.Add(-time.Minute),
		Expiry:    now.Add(expires),
		Body:      body,
	}
	a, err := assert.SignCommand(c, o.key)
	if err != nil {
		return nil, fmt.Errorf("cannot sign %s command for %s: %w", action, target, err)
	}
	return a, nil
}

// bundle is what goes on the wire: the delegation, then the command.
func bundle(delegation, command []byte) []byte {
	b := make([]byte, 0, len(delegation)+len(command))
	return append(append(b, delegation...), command...)
}

// actionSpec describes the arguments an action takes on the command line.
type actionSpec struct {
	usage string
	min   int
	max   int // -1: any number
}

var actionSpecs = map[string]actionSpec{
	mqtt.ActionInstall:    {"install URL [URL...]", 1, -1},
	mqtt.ActionRefresh:    {"refresh URL [URL...]", 1, -1},
	mqtt.ActionBaseUpdate: {"base-update URL [URL...]", 1, -1},
	mqtt.ActionRemove:     {"remove NAME", 1, 1},
	mqtt.ActionRevert:     {"revert NAME", 1, 1},
	mqtt.ActionStart:      {"start NAME", 1, 1},
	mqtt.ActionStop:       {"stop NAME", 1, 1},
	mqtt.ActionRestart:    {"restart NAME", 1, 1},
	mqtt.ActionLogs:       {"logs NAME [--lines N]", 1, 1},
	mqtt.ActionConnect:    {"connect APP:PLUG [SLOT]", 1, 2},
	mqtt.ActionDisconnect: {"disconnect APP:PLUG", 1, 1},
	mqtt.ActionConfigSet:  {"config-set APP.KEY VALUE", 2, 2},
	mqtt.ActionReboot:     {"reboot", 0, 0},
	mqtt.ActionPing:       {"ping", 0, 0},
}

// actionOptions are the options that feed an action's arguments.
type actionOptions struct {
	lines      int
	assertFile string
	minRate    int64
	deadline   time.Duration
}

// parseAction turns ACTION [ARGS] into the command's action and arguments.
func parseAction(pos []string, opts actionOptions) (string, mqtt.Args, error) {
	var args mqtt.Args
	if len(pos) == 0 {
		return "", args, usageActions("missing ACTION")
	}
	action, rest := pos[0], pos[1:]
	spec, ok := actionSpecs[action]
	if !ok {
		return "", args, usageActions(fmt.Sprintf("unknown action %q", action))
	}
	if len(rest) < spec.min || (spec.max >= 0 && len(rest) > spec.max) {
		return "", args, cli.UsageError("wrong arguments: want %s", spec.usage)
	}
	switch action {
	case mqtt.ActionInstall, mqtt.ActionRefresh, mqtt.ActionBaseUpdate:
		args.URLs = rest
		want := assert.AppRevisionType
		if action == mqtt.ActionBaseUpdate {
			want = assert.BaseRevisionType
		}
		as, err := loadAssertions(rest[0], opts.assertFile, want)
		if err != nil {
			return "", args, err
		}
		args.Assertions = as
	case mqtt.ActionConnect, mqtt.ActionDisconnect:
		args.Name = rest[0]
		if len(rest) == 2 {
			args.Slot = rest[1]
		}
	case mqtt.ActionConfigSet:
		args.Key, args.Value = rest[0], rest[1]
	case mqtt.ActionReboot, mqtt.ActionPing:
	default:
		args.Name = rest[0]
	}
	if action == mqtt.ActionLogs {
		args.Lines = opts.lines
	}
	if opts.minRate != 0 || opts.deadline != 0 {
		if args.URLs == nil {
			return "", args, cli.UsageError("--download-min-rate and --download-deadline go with install, refresh and base-update")
		}
		args.Download = &mqtt.DownloadLimits{MinRate: opts.minRate}
		if opts.deadline != 0 {
			args.Download.Deadline = opts.deadline.String()
		}
	}
	return action, args, nil
}

func usageActions(what string) error {
	var all []string
	for _, a := range mqtt.Actions {
		if _, ok := actionSpecs[a]; ok {
			all = append(all, a)
		}
	}
	slices.Sort(all)
	return cli.UsageError("%s (want one of %s)", what, strings.Join(all, ", "))
}

// loadAssertions returns the assertions of the artifact at pkgURL (an
// app-revision or a base-revision, as want says, and delegations): from
// file if given, else from the file named like the URL's last element plus
// ".assert" in the current directory (as 'paddock sign' and 'paddock image
// base' write it), else fetched from pkgURL + ".assert".
func loadAssertions(pkgURL, file, want string) (string, error) {
	var data []byte
	var err error
	from := file
	u, perr := url.Parse(pkgURL)
	if perr != nil || u.Path == "" {
		return "", cli.UsageError("%q is not an artifact URL (want http(s)://host/path/NAME.pdk, or NAME.img for a base)", pkgURL)
	}
	if file == "" {
		from = path.Base(u.Path) + ".assert"
		if _, serr := os.Stat(from); serr != nil {
			au := *u
			au.Path += ".assert"
			from = au.String()
			data, err = fetch(from)
		}
	}
	if data == nil && err == nil {
		data, err = os.ReadFile(from)
	}
	if err != nil {
		return "", fmt.Errorf("cannot read the assertions of %s: %w (pass them with --assert FILE, from 'paddock sign')", pkgURL, err)
	}
	as, err := assert.DecodeBundle(data)
	if err != nil {
		return "", fmt.Errorf("cannot read the assertions of %s from %s: %w", pkgURL, from, err)
	}
	if !slices.ContainsFunc(as, func(a *assert.Assertion) bool { return a.Type() == want }) {
		if want == assert.BaseRevisionType {
			return "", fmt.Errorf("cannot use %s: it holds no base-revision assertion (make the base with 'paddock image base --key KEY --revision N')", from)
		}
		return "", fmt.Errorf("cannot use %s: it holds no app-revision assertion (sign the package with 'paddock sign')", from)
	}
	return string(data), nil
}

// fetch gets a small file over HTTP.
func fetch(u string) ([]byte, error) {
	resp, err := httpClient.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, assert.MaxBundleSize+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if len(data) > assert.MaxBundleSize {
		return nil, fmt.Errorf("GET %s: larger than %d bytes", u, assert.MaxBundleSize)
	}
	return data, nil
}
