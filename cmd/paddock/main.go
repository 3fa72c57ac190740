// Command paddock is the one binary of the paddock appliance agent: the
// daemon, the device admin commands and the developer tools.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"paddock.dev/paddock/agent/admin"
	"paddock.dev/paddock/agent/ctl"
	"paddock.dev/paddock/agent/daemon"
	"paddock.dev/paddock/agent/policy"
	"paddock.dev/paddock/boot"
	"paddock.dev/paddock/confine/denials"
	"paddock.dev/paddock/confine/launch"
	"paddock.dev/paddock/internal/cli"
	otacli "paddock.dev/paddock/ota/cli"
)

// A command is one subcommand of the binary.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

// A group is a heading of 'paddock help' and its commands.
type group struct {
	group string
	cmds  []command
}

// commands lists the subcommands, grouped as 'paddock help' shows them: the
// device's, then the operator's and developer's tools (tools.go), which a
// device build leaves out (-tags paddock_omit_tools).
var commands = append(deviceCommands, toolCommands...)

var deviceCommands = []group{
	{"Device admin (talk to the agent)", []command{
		{"install", "install a signed app package", admin.Install},
		{"refresh", "refresh an app to a newer revision", admin.Refresh},
		{"revert", "go back to an app's previous revision and its data", admin.Revert},
		{"remove", "remove an app with its revisions and data", admin.Remove},
		{"list", "list installed apps", admin.List},
		{"info", "show an app and its kept revisions", admin.Info},
		{"changes", "list changes and their tasks", admin.Changes},
		{"config", "get or set an app's configuration", admin.Config},
		{"services", "list services: state, process, restarts", admin.Services},
		{"start", "start an app's services (and keep them enabled)", admin.Start},
		{"stop", "stop an app's services (they stay stopped until started)", admin.Stop},
		{"restart", "restart an app's services", admin.Restart},
		{"logs", "print (or follow) the logs of an app's services", admin.Logs},
		{"interfaces", "list the interfaces plugs may name, and the gadget's slots", admin.Interfaces},
		{"connections", "list apps' plugs and the slots they are connected to", admin.Connections},
		{"connect", "connect an app's plug to a slot", admin.Connect},
		{"disconnect", "disconnect an app's plug", admin.Disconnect},
		{"base", "update the base in the other A/B slot, or show the slots: 'paddock base update|status'", admin.Base},
		{"network", "show how the agent brought the network up (agent.yaml network:)", admin.Network},
	}},
	{"Apps", []command{
		{"run", "run an app command in its sandbox", launch.RunCommand},
		{"ctl", "talk to the agent from inside an app (health, config)", ctl.Command},
		{"debug", "debug confinement: 'paddock debug denials [APP]'", debug},
	}},
	{"Agent", []command{
		{"daemon", "run the agent", daemon.Run},
		{"init", "the init of a device (PID 1 in the initramfs and the base)", initCommand},
	}},
	{"Keys (to trust a root key on the device)", []command{
		{"key", "create, list, export, trust and delegate signing keys", otacli.Key},
	}},
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == launch.SandboxArg {
		launch.SandboxMain() // the init of a sandbox that 'paddock run' starts
	}
	if boot.IsInit(os.Args) {
		boot.Main() // /init in the initramfs, 'paddock init' in the base
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			return run([]string{args[1], "--help"}, stdout, stderr)
		}
		usage(stdout)
		return 0
	}
	cmd := lookup(args[0])
	if cmd == nil {
		fmt.Fprintf(stderr, "error: unknown command %q (see 'paddock help')\n", args[0])
		return 2
	}
	err := cmd.run(args[1:], stdout, stderr)
	var code cli.ExitCode
	switch {
	case errors.As(err, &code):
		return int(code)
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, cli.ErrUsage):
		fmt.Fprintf(stderr, "error: %s (see 'paddock %s --help')\n", strings.TrimPrefix(err.Error(), cli.ErrUsage.Error()+": "), cmd.name)
		return 2
	default:
		fmt.Fprintf(stderr, "error: %s\n", err)
		return 1
	}
}

// initCommand is reached only for 'paddock help init': main hands 'paddock
// init' to boot.Main before anything else.
func initCommand(args []string, stdout, stderr io.Writer) error {
	fmt.Fprint(stdout, boot.Usage)
	return nil
}

// debug dispatches the debugging subcommands.
func debug(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "denials" {
		return denials.NewCommand(policy.DenialCatalog())(args[1:], stdout, stderr)
	}
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Fprintln(stdout, "Usage: paddock debug denials [APP] [--json] [--file FILE]\n\nLists what the sandbox denied (seccomp and AppArmor lines of the kernel log) and\nnames the interface that would allow each.")
		return nil
	}
	return cli.UsageError("debug takes a subcommand: denials")
}

func lookup(name string) *command {
	for _, g := range commands {
		for i := range g.cmds {
			if g.cmds[i].name == name {
				return &g.cmds[i]
			}
		}
	}
	return nil
}

func usage(w io.Writer) {
	fmt.Fprint(w, `paddock turns a Linux board into a managed appliance: signed app packages,
installed as atomic revisions with rollback.

Usage: paddock COMMAND [ARGS] (paddock COMMAND --help tells more)
`)
	width := 0
	for _, g := range commands {
		for _, c := range g.cmds {
			width = max(width, len(c.name))
		}
	}
	for _, g := range commands {
		fmt.Fprintf(w, "\n%s:\n", g.group)
		for _, c := range g.cmds {
			fmt.Fprintf(w, "  %-*s  %s\n", width, c.name, c.summary)
		}
	}
	fmt.Fprint(w, `
Environment: PADDOCK_ROOT (root of every device path, default /),
PADDOCK_KEYS (signing keys, default ~/.config/paddock/keys).
`)
}
