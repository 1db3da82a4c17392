package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nullops/nullops/internal/testutil"
)

// TestUninstallRemovesEverythingOfTheNode: `nullops-agent uninstall
// --nodeuid=X` removes every container (running with a restart policy, or
// stopped), network and volume labelled for node X — with no agent running
// and no data dir — and nothing of another node. (Without --nodeuid it
// takes every nullops.managed object of the daemon; on this shared test
// daemon that would be other tests' objects, so the test scopes it.)
func TestUninstallRemovesEverythingOfTheNode(t *testing.T) {
	img := testutil.ScratchImage(t, "./scripts/images/demo-web", "nullops-test/demo-web:uninstall")
	unique := fmt.Sprintf("un%x", time.Now().UnixNano()&0xffffffff)
	mine, other := unique+"a", unique+"b"
	lbl := func(uid string) []string {
		return []string{"--label", "nullops.managed=true", "--label", "nullops.node=old-instance", "--label", "nullops.node_uid=" + uid, "--label", "nullops.deployment=7"}
	}
	names := map[string]string{ // name → kind
		unique + "-run":  "container",
		unique + "-stop": "container",
		unique + "-net":  "network",
		unique + "-vol":  "volume",
	}
	t.Cleanup(func() {
		for n, kind := range names {
			if kind == "container" {
				_, _ = testutil.DockerErr("rm", "-f", n)
			}
		}
		_, _ = testutil.DockerErr("rm", "-f", unique+"-other")
		_, _ = testutil.DockerErr("network", "rm", unique+"-net")
		_, _ = testutil.DockerErr("volume", "rm", "-f", unique+"-vol")
	})
	testutil.Docker(t, append(append([]string{"network", "create"}, lbl(mine)...), unique+"-net")...)
	testutil.Docker(t, append(append([]string{"volume", "create"}, lbl(mine)...), unique+"-vol")...)
	testutil.Docker(t, append(append([]string{"run", "-d", "--restart", "unless-stopped", "--network", unique + "-net",
		"-v", unique + "-vol:/data", "--name", unique + "-run"}, lbl(mine)...), img)...)
	testutil.Docker(t, append(append([]string{"create", "--name", unique + "-stop"}, lbl(mine)...), img)...)
	testutil.Docker(t, append(append([]string{"run", "-d", "--name", unique + "-other"}, lbl(other)...), img)...)

	var out strings.Builder
	// A uid that is not one never reaches a label filter.
	if err := uninstall(&uninstallOptions{NodeUID: mine + ",x=y"}, &out); err == nil || out.Len() > 0 {
		t.Fatalf("uninstall with a malformed uid: %v, output %q", err, out.String())
	}
	if err := uninstall(&uninstallOptions{NodeUID: mine}, &out); err != nil {
		t.Fatalf("uninstall: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "4 objects removed; nothing labelled nullops.managed=true and nullops.node_uid="+mine+" is left") {
		t.Errorf("uninstall summary:\n%s", out.String())
	}
	for n := range names {
		if !strings.Contains(out.String(), "removed "+n+"\n") {
			t.Errorf("uninstall output does not name %s:\n%s", n, out.String())
		}
	}
	left := strings.Fields(testutil.Docker(t, "ps", "-a", "--filter", "label=nullops.node_uid="+mine, "--format", "{{.Names}}") + " " +
		testutil.Docker(t, "network", "ls", "--filter", "label=nullops.node_uid="+mine, "--format", "{{.Name}}") + " " +
		testutil.Docker(t, "volume", "ls", "--filter", "label=nullops.node_uid="+mine, "--format", "{{.Name}}"))
	if len(left) > 0 {
		t.Fatalf("left after uninstall: %v", left)
	}
	others := strings.Fields(testutil.Docker(t, "ps", "--filter", "label=nullops.node_uid="+other, "--format", "{{.Names}}"))
	if !slices.Equal(others, []string{unique + "-other"}) {
		t.Fatalf("another node's running containers after uninstall: %v", others)
	}

	// Nothing left: a second run removes nothing and succeeds.
	out.Reset()
	if err := uninstall(&uninstallOptions{NodeUID: mine}, &out); err != nil || !strings.Contains(out.String(), "0 objects removed") {
		t.Fatalf("second uninstall: %v\n%s", err, out.String())
	}
}
