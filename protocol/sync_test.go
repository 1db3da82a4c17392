package protocol

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// A node uid becomes a Docker label value and a label filter term on the
// agent: anything that could widen the filter (=, commas, spaces) or is too
// long is refused when the sync is decoded.
func TestSyncRequestNodeUID(t *testing.T) {
	for uid, ok := range map[string]bool{
		"":                                 true, // control planes that predate it
		"3f2a9c0d1e4b5a6978f0c1d2e3f4a5b6": true,
		"node_1-A":                         true,
		"a=b":                              false,
		"a,nullops.managed=true":           false,
		"a b":                              false,
		"ü":                                false,
		strings.Repeat("a", 64):            true,
		strings.Repeat("a", 65):            false,
	} {
		body, _ := json.Marshal(SyncRequest{Deployments: []DeploySpec{}, NodeUID: uid})
		_, err := DecodeBody[SyncRequest](Envelope{Type: TypeSync, Body: body})
		if ok && err != nil {
			t.Errorf("node_uid %q refused: %v", uid, err)
		}
		if !ok && !errors.Is(err, ErrInvalid) {
			t.Errorf("node_uid %q accepted (err %v)", uid, err)
		}
	}
}
