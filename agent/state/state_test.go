package state

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/nullops/nullops/protocol"
)

func TestStoreKeepsNoSecrets(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	st, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	spec := protocol.DeploySpec{
		DeploymentID: 7, Name: "pr-7",
		Graph:    protocol.Graph{Nodes: []protocol.Node{{ID: "web", Kind: protocol.KindService}}},
		Services: map[string]protocol.ServiceImage{"web": {Image: "r/web:1", Auth: &protocol.RegistryAuth{ServerAddress: "r", Username: "u", Password: "registry-pass-xyz"}}},
		Plugins:  map[string]protocol.PluginImage{"p": {Image: "r/p:1", Auth: &protocol.RegistryAuth{ServerAddress: "r", Password: "plugin-pass-xyz"}}},
		Secrets:  map[string]string{"db": "db-secret-xyz"},
	}
	d := &Deployment{ID: 7, Spec: spec, Status: StatusDeploying, Steps: map[string]*Step{"web": {Status: protocol.StepRunning, Attempt: 1}}}
	if err := st.Put(d); err != nil {
		t.Fatal(err)
	}
	if spec.Secrets["db"] == "" || spec.Services["web"].Auth.Password == "" {
		t.Fatal("Put modified the caller's spec")
	}
	got, err := st.Get(7)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != StatusDeploying || got.Steps["web"].Attempt != 1 || got.Spec.Services["web"].Image != "r/web:1" || got.Spec.Services["web"].Auth.ServerAddress != "r" {
		t.Fatalf("round trip: %+v", got)
	}
	if list, _ := st.List(); len(list) != 1 {
		t.Fatalf("list: %d", len(list))
	}
	if err := st.Delete(7); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(7); err == nil {
		t.Fatal("deleted record still readable")
	}
	st.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"registry-pass-xyz", "plugin-pass-xyz", "db-secret-xyz"} {
		if bytes.Contains(b, []byte(s)) {
			t.Errorf("%s written to %s", s, path)
		}
	}
	// Reopen: data survives.
	st, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if list, _ := st.List(); len(list) != 0 {
		t.Fatalf("after reopen: %d records", len(list))
	}
}

func TestDeletedDeploymentsAreRememberedAndBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	st, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{1, 2, 5, 6, 7, deletedKept + 6} {
		if err := st.MarkDeleted(id); err != nil {
			t.Fatal(err)
		}
	}
	// Marking deletedKept+6 dropped the ids below 6.
	for id, want := range map[int64]bool{1: false, 5: false, 6: true, 7: true, 8: false, deletedKept + 6: true} {
		if got, err := st.Deleted(id); err != nil || got != want {
			t.Errorf("Deleted(%d) = %v, %v; want %v", id, got, err, want)
		}
	}
	if err := st.Undelete(6); err != nil {
		t.Fatal(err)
	}
	// Survives a restart of the agent.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if st, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for id, want := range map[int64]bool{6: false, 7: true} {
		if got, err := st.Deleted(id); err != nil || got != want {
			t.Errorf("after reopening, Deleted(%d) = %v, %v; want %v", id, got, err, want)
		}
	}
}
