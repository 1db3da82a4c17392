package docker

import (
	"os"
	"path/filepath"
	"testing"
)

func TestOwnContainerIDFromMountinfo(t *testing.T) {
	id := "3f4e9c1d2b7a4f0e8d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706"
	cases := map[string]string{
		"in a container": "812 790 0:130 / / rw,relatime master:1 - overlay overlay rw\n" +
			"830 812 254:1 /var/lib/docker/containers/" + id + "/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/vda1 rw\n" +
			"831 812 254:1 /var/lib/docker/containers/" + id + "/hostname /etc/hostname rw,relatime - ext4 /dev/vda1 rw\n",
		"on the host": "22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n" +
			"45 22 0:40 / /var/lib/docker rw - ext4 /dev/vda1 rw\n",
	}
	want := map[string]string{"in a container": id, "on the host": ""}
	for name, content := range cases {
		p := filepath.Join(t.TempDir(), "mountinfo")
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := ownContainerID(p); got != want[name] {
			t.Errorf("%s: ownContainerID = %q, want %q", name, got, want[name])
		}
	}
	if got := ownContainerID(filepath.Join(t.TempDir(), "missing")); got != "" {
		t.Errorf("missing file: %q", got)
	}
}
