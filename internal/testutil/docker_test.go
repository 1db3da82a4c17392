package testutil

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestScratchImageRunsAndAnswers builds demo-web FROM scratch, runs it and
// asks it over HTTP: nothing is pulled.
func TestScratchImageRunsAndAnswers(t *testing.T) {
	ref := ScratchImage(t, "./scripts/images/demo-web", "nullops-test/demo-web:testutil")
	name := fmt.Sprintf("nullops-testutil-%d", time.Now().UnixNano())
	Docker(t, "run", "-d", "--name", name, "-p", "127.0.0.1::8080", "-e", "SERVICE_NAME=probe", ref)
	t.Cleanup(func() { _, _ = DockerErr("rm", "-f", name) })
	hostPort := Docker(t, "port", name, "8080/tcp")
	hostPort = strings.Split(hostPort, "\n")[0]
	ctx := Context(t, 30*time.Second)
	var body string
	WaitFor(t, ctx, 100*time.Millisecond, "demo-web answers on "+hostPort, func() bool {
		resp, err := http.Get("http://" + hostPort + "/")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == 200
	})
	if !strings.Contains(body, "hello from probe") {
		t.Fatalf("unexpected body %q", body)
	}
}

func TestRegistryPushAndAuth(t *testing.T) {
	reg := StartRegistry(t, "ci", "s3cret")
	ref := ScratchImage(t, "./scripts/images/demo-web", "nullops-test/demo-web:testutil")
	reg.Push(t, ref, "demo/web", "v1.0.0")
	resp, err := http.Get("http://" + reg.Host + "/v2/demo/web/tags/list")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous tag list: got %d, want 401", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", "http://"+reg.Host+"/v2/demo/web/tags/list", nil)
	req.SetBasicAuth("ci", "s3cret")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "v1.0.0") {
		t.Fatalf("tag list %s lacks v1.0.0", b)
	}
}
