package kube

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nullops/nullops/internal/testutil"
)

// Installation is deploy/kubernetes/agent.yaml made unique for one test, so
// tests that install it run side by side on one cluster and never meet
// another run's leftovers: the agent's namespace (nullops-system) and every
// name that starts with nullops-agent (ServiceAccount, ClusterRoles and
// bindings, admission policies, Secrets, Deployment, Service, the node name
// NULLOPS_NODENAME) get the same random suffix, consistently, also inside
// the admission policies' expressions. The NodePort is left to the cluster
// to choose.
type Installation struct {
	YAML         []byte
	NS, SA       string // the agent's namespace and ServiceAccount (also its Deployment, Service and node name)
	WorkloadRole string // the ClusterRole the agent binds per namespace
	StateSecret  string
	TokenSecret  string
}

// AgentInstallation reads agent.yaml and makes it unique.
func AgentInstallation(t testing.TB) Installation {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "deploy", "kubernetes", "agent.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	id := hex.EncodeToString(b)
	name, ns := "nullops-agent-"+id, "nullops-system-"+id
	s := string(raw)
	for _, want := range []string{"nullops-system", "nullops-agent", ", nodePort: 30500"} {
		if !strings.Contains(s, want) {
			t.Fatalf("agent.yaml no longer contains %q: update kube.AgentInstallation", want)
		}
	}
	s = strings.ReplaceAll(s, "nullops-system", ns)
	s = strings.ReplaceAll(s, "nullops-agent", name)
	s = strings.ReplaceAll(s, ", nodePort: 30500", "")
	return Installation{
		YAML: []byte(s), NS: ns, SA: name,
		WorkloadRole: name + "-workloads", StateSecret: name + "-state", TokenSecret: name + "-token",
	}
}

// WithImage is the manifest with the agent's image replaced by ref (an
// image loaded into the cluster with ImportImage or ScratchImage).
func (in Installation) WithImage(t testing.TB, ref string) []byte {
	t.Helper()
	out := bytes.Replace(in.YAML, []byte("image: nullops/agent:latest"), []byte("image: "+ref), 1)
	if bytes.Equal(out, in.YAML) {
		t.Fatal("agent.yaml no longer names the image nullops/agent:latest: update kube.Installation.WithImage")
	}
	return out
}
