package errs_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/nullops/nullops/server/errs"
)

func TestFieldsCollectEveryProblemOnce(t *testing.T) {
	f := errs.Fields{}
	if f.Err() != nil {
		t.Fatal("no problems must give no error")
	}
	f.Add("ports", "at most %d ports", 64)
	f.Add("ports", "at most %d ports", 64)
	f.Add("ports", "port %d is listed twice", 80)
	if got := f["ports"]; got != "at most 64 ports; port 80 is listed twice" {
		t.Fatalf("ports: %q", got)
	}
	err := fmt.Errorf("create service: %w", f.Err())
	e, ok := errs.As(err)
	if !ok || e.Kind != errs.Invalid || e.Code != "invalid" || e.Message != "ports: at most 64 ports; port 80 is listed twice" {
		t.Fatalf("one field: %+v", e)
	}
	f.Merge("nodes.a.", errs.Fields{"image": "is required"})
	e, _ = errs.As(f.ErrCode("invalid_pipeline"))
	if e.Code != "invalid_pipeline" || e.Message != "invalid request: 2 fields have problems" || errs.FieldsOf(e)["nodes.a.image"] != "is required" {
		t.Fatalf("two fields: %+v", e)
	}
	if !strings.Contains(e.Error(), "nodes.a.image: is required") || !strings.Contains(e.Error(), "ports: at most") {
		t.Fatalf("Error() must name every field for logs: %q", e.Error())
	}
}

func TestMarkShowsTheChainAndKeepsIdentity(t *testing.T) {
	conflict := errs.Mark(errs.Conflict, "conflict", "already exists")
	err := fmt.Errorf("team %q: %w", "ops", conflict)
	if !errors.Is(err, conflict) || errs.KindOf(err) != errs.Conflict || !errs.Is(err, errs.Conflict) {
		t.Fatalf("kind lost: %v", err)
	}
	if e, _ := errs.As(err); !e.Chain || err.Error() != `team "ops": already exists` {
		t.Fatalf("chain: %q", err.Error())
	}
	if errs.KindOf(errors.New("boom")) != errs.Internal || errs.Is(nil, errs.Internal) {
		t.Fatal("an unkinded error is internal; nil is nothing")
	}
}

func TestKindNames(t *testing.T) {
	for k := errs.Internal; k <= errs.Unavailable; k++ {
		if strings.HasPrefix(k.String(), "kind(") {
			t.Errorf("kind %d has no name", k)
		}
		if e := errs.New(k, "", "x"); e.Code != k.String() {
			t.Errorf("default code of %v: %q", k, e.Code)
		}
	}
}
