package kube

import (
	"testing"
	"time"
)

// TestPullAuthRetry: a registry's refusal of the credentials is waited on
// for PullAuthGrace (the back-off that follows included), then reported as
// the refusal; other pull failures are not waited on.
func TestPullAuthRetry(t *testing.T) {
	refused := `ErrImagePull: failed to pull and unpack image "r/web:1": pulling from host r failed with status code [manifests 1]: 401 Unauthorized`
	var a authRetry
	if !a.tolerate(refused) || !a.tolerate(`ImagePullBackOff: Back-off pulling image "r/web:1"`) {
		t.Fatal("a 401 and the back-off after it are not waited on")
	}
	a.since = time.Now().Add(-PullAuthGrace - time.Second)
	if a.tolerate(`ImagePullBackOff: Back-off pulling image "r/web:1"`) {
		t.Fatal("still waiting after the grace")
	}
	if got := a.reason(`ImagePullBackOff: Back-off pulling image "r/web:1"`); got != refused {
		t.Fatalf("reported %q, want the registry's refusal", got)
	}
	var b authRetry
	if b.tolerate(`ErrImagePull: rpc error: code = NotFound desc = failed to pull: r/web:1: not found`) {
		t.Fatal("a missing image is waited on")
	}
}
