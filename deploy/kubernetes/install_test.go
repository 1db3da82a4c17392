package kubernetes_test

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// installation is agent.yaml made unique for one test, so tests that install
// it run side by side on one cluster and never meet another run's leftovers:
// the agent's namespace (nullops-system) and every name that starts with
// nullops-agent (ServiceAccount, ClusterRoles and bindings, admission
// policies, Secrets, Deployment, Service) get the same random suffix,
// consistently, also inside the admission policies' expressions. The
// NodePort is left to the cluster to choose.
type installation struct {
	YAML         []byte
	NS, SA       string // the agent's namespace and ServiceAccount
	WorkloadRole string // the ClusterRole the agent binds per namespace
	StateSecret  string
	TokenSecret  string
}

func uniqueInstallation(t *testing.T) installation {
	t.Helper()
	raw, err := os.ReadFile("agent.yaml")
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
			t.Fatalf("agent.yaml no longer contains %q: update uniqueInstallation", want)
		}
	}
	s = strings.ReplaceAll(s, "nullops-system", ns)
	s = strings.ReplaceAll(s, "nullops-agent", name)
	s = strings.ReplaceAll(s, ", nodePort: 30500", "")
	return installation{
		YAML: []byte(s), NS: ns, SA: name,
		WorkloadRole: name + "-workloads", StateSecret: name + "-state", TokenSecret: name + "-token",
	}
}
