package executor

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nullops/nullops/internal/testutil"
)

// dockerIsolatesNetworks probes whether this host enforces Docker's own
// isolation between bridge networks, without the agent: two plain networks,
// one demo-web container in each, and a dial from one to the other's IP.
// Some virtualised kernels accept Docker's iptables rules but never run the
// FORWARD hook, so containers of different networks reach each other; the
// agent relies on Docker for that isolation and cannot be blamed for it.
func dockerIsolatesNetworks(t *testing.T) bool {
	t.Helper()
	name := fmt.Sprintf("nullops-isoprobe-%d", time.Now().UnixNano())
	cleanup := func() {
		_, _ = testutil.DockerErr("rm", "-f", name+"-a", name+"-b")
		_, _ = testutil.DockerErr("network", "rm", name+"-a", name+"-b")
	}
	defer cleanup()
	for _, n := range []string{"a", "b"} {
		testutil.Docker(t, "network", "create", name+"-"+n)
	}
	testutil.Docker(t, "run", "-d", "--name", name+"-a", "--network", name+"-a", demoWebImage)
	testutil.Docker(t, "run", "-d", "--name", name+"-b", "--network", name+"-b", "-p", "127.0.0.1::8080", demoWebImage)
	ipA := testutil.Docker(t, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name+"-a")
	port := strings.TrimSpace(testutil.Docker(t, "port", name+"-b", "8080/tcp"))
	port = port[strings.LastIndex(port, ":")+1:]
	var code int
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	testutil.WaitFor(t, ctx, 200*time.Millisecond, "probe container answers", func() bool {
		code, _ = httpGet(t, fmt.Sprintf("http://127.0.0.1:%s/dial?addr=%s:8080", port, strings.TrimSpace(ipA)))
		return code == 200 || code == 502
	})
	return code != 200
}

// dockerRulesMisordered tells whether Docker's own FORWARD rules let the
// bridges of these networks bypass its isolation chain: Docker 20.10 puts
// each bridge's "-i br-X ! -o br-X -j ACCEPT" rule in FORWARD and keeps the
// "-j DOCKER-ISOLATION-STAGE-1" jump above them, but concurrent network
// creations (other tests create hundreds) race on that ordering (see
// moby/libnetwork#1658 and moby/moby#25393) and can leave a bridge's ACCEPT
// above the jump. Traffic between such bridges then flows, which is not the
// agent's doing.
func dockerRulesMisordered(t *testing.T, networkIDs ...string) (bool, string) {
	t.Helper()
	out, err := exec.Command("iptables", "-S", "FORWARD").CombinedOutput()
	if err != nil {
		return false, ""
	}
	rules := strings.Split(string(out), "\n")
	jump := -1
	for i, r := range rules {
		if strings.TrimSpace(r) == "-A FORWARD -j DOCKER-ISOLATION-STAGE-1" {
			jump = i
			break
		}
	}
	for _, id := range networkIDs {
		br := "br-" + id[:min(12, len(id))]
		for i, r := range rules {
			if strings.HasPrefix(r, "-A FORWARD -i "+br+" ! -o "+br+" -j ACCEPT") && (jump < 0 || i < jump) {
				return true, fmt.Sprintf("FORWARD rule %d %q comes before the isolation jump (rule %d)", i, r, jump)
			}
		}
	}
	return false, ""
}
