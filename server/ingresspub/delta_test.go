package ingresspub_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nullops/nullops/ingress/dynconfig"
	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/server/ingresspub"
)

// Every version keeps its delta; a client behind by several versions gets
// one composed delta that leads exactly to the current table, a client
// behind by more than the history, or unknown, gets none (whole document).
func TestDeltaHistory(t *testing.T) {
	w := newWorld(t)
	ctx := testutil.Context(t, time.Minute)
	p := newPublisher(t, w.st, ingresspub.Options{History: 3})
	if err := p.Recompute(ctx); err != nil {
		t.Fatal(err)
	}
	v1 := p.Current()
	if _, ok := p.Delta(v1.ETag, v1); ok {
		t.Fatal("a delta from a table to itself")
	}
	snaps := []*ingresspub.Snapshot{v1}
	for _, port := range []int{33001, 33002, 33003, 33004} {
		w.seed.SetHostPort(t, w.depRunning, "web", port)
		if err := p.Recompute(ctx); err != nil {
			t.Fatal(err)
		}
		snaps = append(snaps, p.Current())
	}
	cur := p.Current()
	if cur.Version != 5 {
		t.Fatalf("version %d, want 5", cur.Version)
	}
	apply := func(base *ingresspub.Snapshot, body []byte) {
		t.Helper()
		var cfg dynconfig.Configuration
		if err := json.Unmarshal(base.Body(), &cfg); err != nil {
			t.Fatal(err)
		}
		st := dynconfig.NewState(&cfg)
		d, err := dynconfig.DecodeDelta(body)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Apply(d); err != nil {
			t.Fatal(err)
		}
		got, _ := json.Marshal(st.Config())
		if string(got) != string(cur.Body()) {
			t.Fatalf("delta from version %d does not lead to the current document", base.Version)
		}
	}
	// One step behind: the stored delta. Two and three: composed.
	for _, base := range snaps[1:4] {
		body, ok := p.Delta(base.ETag, cur)
		if !ok {
			t.Fatalf("no delta from version %d", base.Version)
		}
		apply(base, body)
	}
	// Version 1 is older than the history (versions 3, 4, 5).
	if _, ok := p.Delta(snaps[0].ETag, cur); ok {
		t.Fatal("a delta across a gap in the history")
	}
	if _, ok := p.Delta(dynconfig.Hash{1, 2}.ETag(), cur); ok {
		t.Fatal("a delta from an unknown table")
	}
	if _, ok := p.Delta("garbage", cur); ok {
		t.Fatal("a delta from garbage")
	}
	// Back to the content of version 4: same ETag, and a client at that
	// content gets nothing new.
	w.seed.SetHostPort(t, w.depRunning, "web", 33003)
	if err := p.Recompute(ctx); err != nil {
		t.Fatal(err)
	}
	if p.Current().ETag != snaps[3].ETag {
		t.Fatal("equal content must have equal ETags")
	}
	if _, ok := p.Delta(snaps[3].ETag, p.Current()); ok {
		t.Fatal("a delta from the current content")
	}
}
