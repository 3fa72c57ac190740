// Package fleet is the operator side of the fleet link: 'paddock fleet
// devices' lists what devices report, 'paddock fleet send' signs a command
// and follows the devices' answers, and 'paddock fleet rollout' sends a
// command to a group in waves, stopping when too many devices fail, with
// its progress kept on disk so that it can be resumed.
//
// It is a package of its own so that a device build can leave it out: the
// device side lives in package mqtt.
package fleet

import (
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"

	"paddock.dev/paddock/internal/cli"
)

const runUsage = `
Usage: paddock fleet devices|send|rollout|serve ...

Fleet drives devices over MQTT: 'devices' lists them with their reported
state, 'send' sends one signed command to a device or a group and follows
the answers, 'rollout' sends a command to a group in waves and can be
resumed ('rollout status|resume|abort [ID]'), and 'serve' serves a
directory of packages over HTTP for devices to download (with Range, so a
cut download resumes).

The broker is --broker URL (tcp://host:1883, ssl://host:8883), or
$PADDOCK_BROKER. 'paddock fleet COMMAND --help' tells more.
`

// Run dispatches 'paddock fleet SUBCOMMAND ARGS'.
func Run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return cli.UsageError("fleet takes a subcommand: devices, send, rollout or serve")
	}
	switch args[0] {
	case "devices":
		return Devices(args[1:], stdout, stderr)
	case "send":
		return Send(args[1:], stdout, stderr)
	case "rollout":
		return Rollout(args[1:], stdout, stderr)
	case "serve":
		return Serve(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, runUsage[1:])
		return flag.ErrHelp
	}
	return cli.UsageError("unknown fleet subcommand %q (want devices, send, rollout or serve)", args[0])
}

// brokerFlag adds --broker, defaulting to $PADDOCK_BROKER.
func brokerFlag(fs *flag.FlagSet) *string {
	return fs.String("broker", os.Getenv("PADDOCK_BROKER"), "the MQTT broker's `URL`, such as tcp://broker:1883 (default $PADDOCK_BROKER)")
}

// needBroker reports the usage error of a missing --broker.
func needBroker(cmd, broker string) error {
	if broker == "" {
		return cli.UsageError("%s needs --broker URL (or set PADDOCK_BROKER)", cmd)
	}
	return nil
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand panics instead)
	return hex.EncodeToString(b)
}
