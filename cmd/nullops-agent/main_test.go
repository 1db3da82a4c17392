package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/nullops/nullops/agent/certs"
	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/protocol"
)

const testToken = "nullops-node_container-test-token-0123456789"

// hello dials the agent like the control plane does and returns its hello
// reply and the certificate thumbprint it presented.
func hello(ctx context.Context, port int, token string) (protocol.HelloReply, string, int, error) {
	var seen string
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, //nolint:gosec // pinned below by the test
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error { seen = certs.Thumbprint(raw[0]); return nil }}}
	conn, resp, err := websocket.Dial(ctx, fmt.Sprintf("wss://127.0.0.1:%d%s", port, protocol.PathConnect), &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: tr}, HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		return protocol.HelloReply{}, seen, status, err
	}
	defer conn.CloseNow() //nolint:errcheck
	p := protocol.NewPeer(conn, "s", nil)
	go p.Run(ctx) //nolint:errcheck
	r, err := protocol.CallHello.Do(ctx, p, protocol.HelloRequest{ServerVersion: "test", ProtocolVersion: protocol.Version})
	return r, seen, 101, err
}

// TestDockerRunLineOfTheSpec runs the agent image exactly as the product
// documentation says — docker run -p 5000:5000 -e AGENT_TOKEN=… -v …:/data
// image — (with a free host port instead of 5000): it serves wss on 5000,
// keeps its certificate and journal in /data, and takes AGENT_TOKEN.
func TestDockerRunLineOfTheSpec(t *testing.T) {
	var b [4]byte
	_, _ = rand.Read(b[:])
	suffix := hex.EncodeToString(b[:])
	image := testutil.ScratchImage(t, "./cmd/nullops-agent", "nullops-test/agent-"+suffix+":latest")
	t.Cleanup(func() { _, _ = testutil.DockerErr("rmi", "-f", image) })
	data := t.TempDir()
	port := testutil.FreePort(t)
	name := "nullops-test-agent-" + suffix
	testutil.Docker(t, "run", "-d", "--name", name, "-p", fmt.Sprintf("127.0.0.1:%d:5000", port),
		"-e", "AGENT_TOKEN="+testToken, "-v", data+":/data", image)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command("docker", "logs", name).CombinedOutput()
			t.Logf("agent container log:\n%s", out)
		}
		_, _ = testutil.DockerErr("rm", "-f", name)
	})

	ctx := testutil.Context(t, 60*time.Second)
	var r protocol.HelloReply
	var seen string
	testutil.WaitFor(t, ctx, 100*time.Millisecond, "the agent container answers hello", func() bool {
		var err error
		r, seen, _, err = hello(ctx, port, testToken)
		return err == nil
	})
	if r.ProtocolVersion != protocol.Version || r.InstanceID == "" || r.Capacity.CPUs <= 0 {
		t.Fatalf("hello reply %+v", r)
	}
	id, err := certs.Ensure(data)
	if err != nil {
		t.Fatal(err)
	}
	if id.Generated || id.Thumbprint != seen {
		t.Fatalf("certificate in the /data volume (%s, generated now: %t) is not the one served (%s)", id.Thumbprint, id.Generated, seen)
	}
	if _, err := os.Stat(filepath.Join(data, "journal.db")); err != nil {
		t.Fatalf("journal not in /data: %v", err)
	}
	if _, _, status, err := hello(ctx, port, "nullops-node_wrong-token-wrong-token"); err == nil || status != http.StatusUnauthorized {
		t.Fatalf("wrong token: status %d, %v", status, err)
	}
	// The container's log reaches `docker logs` a little later than the
	// answer reaches us: wait for the refusal to be logged.
	var logs []byte
	testutil.WaitFor(t, ctx, 100*time.Millisecond, "the agent to log the refused token", func() bool {
		logs, _ = exec.Command("docker", "logs", name).CombinedOutput()
		return strings.Contains(string(logs), "control-plane connection refused: 401")
	})
	if strings.Contains(string(logs), testToken) {
		t.Fatalf("the token appears in the container log:\n%s", logs)
	}

	// Restarted, it keeps its certificate and instance.
	testutil.Docker(t, "restart", name)
	var again protocol.HelloReply
	var seenAgain string
	testutil.WaitFor(t, ctx, 100*time.Millisecond, "the restarted agent answers hello", func() bool {
		var err error
		again, seenAgain, _, err = hello(ctx, port, testToken)
		return err == nil
	})
	if seenAgain != seen || again.InstanceID != r.InstanceID {
		t.Fatalf("restart changed the identity: %s/%s → %s/%s", seen, r.InstanceID, seenAgain, again.InstanceID)
	}
}

func TestMissingTokenStopsWithTheVariableName(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "nullops-agent")
	testutil.BuildStatic(t, "./cmd/nullops-agent", bin)
	cmd := exec.Command(bin, "--datadir="+t.TempDir())
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "AGENT_TOKEN") {
		t.Fatalf("exit %v, output %s", err, out)
	}
}

// debugMarkers are the symbols and strings of the test-only event listener.
var (
	debugSymbols = []string{"agent/app.debugHandler", "agent/app.(*App).serveDebug.func1"}
	debugStrings = []string{"eventslisten", "TEST-ONLY debug events endpoint", "debug event journaled"}
)

// debugMarkersIn lists the debug symbols and strings found in bin.
func debugMarkersIn(t *testing.T, bin string) []string {
	t.Helper()
	syms, err := exec.Command("go", "tool", "nm", bin).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool nm: %v\n%s", err, syms)
	}
	var found []string
	for _, sym := range debugSymbols {
		if strings.Contains(string(syms), sym) {
			found = append(found, "symbol "+sym)
		}
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range debugStrings {
		if strings.Contains(string(data), s) {
			found = append(found, fmt.Sprintf("string %q", s))
		}
	}
	return found
}

// TestProductionBinaryHasNoDebugEndpoint builds nullops-agent as `make
// build` does (no build tags) and checks that the test-only event listener
// is not in it: no symbol of its handler, none of its strings, and the
// flag is refused. The same build with -tags nullopsdebug has every one of
// them, so a renamed symbol cannot make this pass without looking.
func TestProductionBinaryHasNoDebugEndpoint(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "nullops-agent")
	testutil.BuildStatic(t, "./cmd/nullops-agent", bin)
	if found := debugMarkersIn(t, bin); len(found) > 0 {
		t.Errorf("production binary contains %v", found)
	}
	debug := testutil.GoBinary(t, "./cmd/nullops-agent", "nullopsdebug")
	if found := debugMarkersIn(t, debug); len(found) != len(debugSymbols)+len(debugStrings) {
		t.Errorf("the nullopsdebug build has only %v of the listener's symbols %v and strings %v: the markers are stale", found, debugSymbols, debugStrings)
	}
	cmd := exec.Command(bin, "--datadir="+t.TempDir(), "--debug.eventslisten=127.0.0.1:1")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "AGENT_TOKEN=" + testToken}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "eventslisten") {
		t.Fatalf("--debug.eventslisten not refused: exit %v, output %s", err, out)
	}
}
