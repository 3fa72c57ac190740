package admin

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/agent/apitest"
	"paddock.dev/paddock/agent/client"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/internal/testutil"
)

type fakeNetwork struct{ st *apitypes.NetworkStatus }

func (f fakeNetwork) Status() *apitypes.NetworkStatus { return f.st }

// serveNetwork serves the API with st as the network manager's status.
func serveNetwork(t *testing.T, st *apitypes.NetworkStatus) {
	apitest.Start(t).Server.ServeNetwork(fakeNetwork{st})
	testutil.Replace(t, &newClient, func() *client.Client { return client.New(dirs.SocketPath) })
}

func TestNetwork(t *testing.T) {
	until := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	want := &apitypes.NetworkStatus{Managed: true, Interfaces: []apitypes.NetworkInterface{
		{Name: "eth0", Method: "dhcp", Address: "10.0.2.15/24", Gateway: "10.0.2.2", DNS: []string{"10.0.2.3"}, Server: "10.0.2.2", LeaseExpiry: until, Renew: until.Add(-12 * time.Hour)},
		{Name: "eth1", Method: "dhcp", Error: "eth1 has no carrier (is the cable plugged in?)", Retry: until},
		{Name: "eth2", Method: "static"},
	}}
	serveNetwork(t, want)
	out, _, err := run(Network)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"Interface  Method  Address", "eth0       dhcp    10.0.2.15/24  10.0.2.2  10.0.2.3  until ",
		"eth1       dhcp    -", "no carrier (is the cable plugged in?) (again at ", "eth2       static  -", "waiting"} {
		if !strings.Contains(out, w) {
			t.Errorf("got\n%s\nwant it to contain %q", out, w)
		}
	}
	out, _, err = run(Network, "--json")
	var got apitypes.NetworkStatus
	if err != nil || json.Unmarshal([]byte(out), &got) != nil || !reflect.DeepEqual(&got, want) {
		t.Errorf("--json: got %s (%v), want %+v", out, err, want)
	}
	if _, _, err := run(Network, "eth0"); err == nil || !strings.Contains(err.Error(), "takes no arguments") {
		t.Errorf("got %v, want a usage error", err)
	}
}

func TestNetworkLeftAlone(t *testing.T) {
	serveNetwork(t, &apitypes.NetworkStatus{Why: "agent.yaml says network: none", Interfaces: []apitypes.NetworkInterface{}})
	out, _, err := run(Network)
	if err != nil || out != "the agent leaves the network alone: agent.yaml says network: none\n" {
		t.Errorf("got %q, %v", out, err)
	}
}
