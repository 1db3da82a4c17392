package browsertest

import (
	"strings"
	"testing"

	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/api/apitest"
)

// TestPluginDockerSocketWarning: the plugin form offers Docker socket
// access with a visible warning, the list marks such a plugin, and the
// grant is in the audit log.
func TestPluginDockerSocketWarning(t *testing.T) {
	env := startServer(t)
	b := newBrowser(t, env.URL)
	b.login(adminUser, adminPassword)

	b.createInDialog("/admin/plugins", "plugin", func(f string) {
		b.fill(f+` [name="name"]`, "exec")
		b.fill(f+` [name="image"]`, "nullops/plugin-exec")
		b.fill(f+` [name="tag"]`, "1.0.0")
		b.waitText(f+` .field-warning`, "root on every node")
		b.shot("plugin-docker-socket-warning")
		b.click(f + ` [name="docker_socket"]`)
	})
	b.waitText(`tr[data-name="exec"]`, "root on the node")

	// The entry is written in the transaction that created the plugin.
	var audit restapi.List[restapi.AuditEntry]
	env.Admin.Get(apitest.Path("/audit?action=plugin.docker_socket")).Want(t, 200).Decode(t, &audit)
	if audit.Total != 1 || !strings.Contains(audit.Items[0].ActorName, adminUser) {
		t.Fatalf("audit: %+v", audit.Items)
	}
}
