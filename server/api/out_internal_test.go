package api

import (
	"reflect"
	"strings"
	"testing"

	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/deploy"
	"github.com/nullops/nullops/server/registry"
	"github.com/nullops/nullops/server/store"
	"github.com/nullops/nullops/server/usage"
)

// jsonNames lists the JSON field names of struct type t (embedded structs
// flattened, "-" left out) with their tag options (",omitempty").
func jsonNames(t reflect.Type) map[string]string {
	out := map[string]string{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			for k, o := range jsonNames(ft) {
				out[k] = o
			}
			continue
		}
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = opts
	}
	return out
}

// TestContractCoversTheRows: every field a store row (or a domain answer)
// shows in JSON has its place in the REST type the API encodes it as, with
// the same options (omitempty), so a column added to a row cannot silently
// miss the API (the conversions copy field by field); and the REST type has
// no field beyond the row's but the ones named here, so moving the
// encoding from the rows to the contract kept the shape the web UI reads.
func TestContractCoversTheRows(t *testing.T) {
	for _, tc := range []struct {
		row, api any
		extra    []string // fields the API adds to the row
	}{
		{store.Deployment{}, restapi.Deployment{}, []string{"access", "urls", "degraded", "degraded_reason", "steps", "services"}},
		{store.DeploymentStep{}, restapi.DeploymentStep{}, nil},
		{store.DeploymentService{}, restapi.DeploymentService{}, []string{"url"}},
		{store.StepLogLine{}, restapi.LogChunk{}, nil},
		{store.User{}, restapi.User{}, nil},
		{store.Team{}, restapi.Team{}, nil},
		{store.APIToken{}, restapi.APIToken{}, nil},
		{store.Project{}, restapi.Project{}, []string{"ttl", "deploy_timeout", "access"}},
		{store.Environment{}, restapi.Environment{}, []string{"default_ttl", "url_pattern", "access"}},
		{store.Node{}, restapi.Node{}, []string{"connected", "reserved", "environment"}},
		{protocol.Capacity{}, restapi.NodeCapacity{}, nil},
		{protocol.Usage{}, restapi.NodeUsage{}, nil},
		{store.Reservation{}, restapi.NodeReservation{}, nil},
		{restapi.UserNode{}, restapi.Node{}, nil}, // what users see is a part of what admins see
		{store.NodeEvent{}, restapi.NodeEvent{}, nil},
		{store.Registry{}, restapi.Registry{}, nil},
		{registry.Listing{}, restapi.Tags{}, nil},
		{store.Service{}, restapi.Service{}, nil},
		{protocol.Health{}, restapi.Health{}, nil},
		{store.Plugin{}, restapi.Plugin{}, []string{"timeout"}},
		{store.Secret{}, restapi.Secret{}, nil},
		{store.PipelineVersion{}, restapi.PipelineVersion{}, []string{"order"}},
		{store.TeamMember{}, restapi.TeamMember{}, nil},
		{store.Grant{}, restapi.Grant{}, nil},
		{store.AuditEntry{}, restapi.AuditEntry{}, nil},
		{store.HistoryEntry{}, restapi.HistoryEntry{}, nil},
		{deploy.PlacementVerdict{}, restapi.PlacementVerdict{}, nil},
		{usage.Deployment{}, restapi.Usage{}, nil},
		{usage.Series{}, restapi.UsageSeries{}, nil},
	} {
		row := jsonNames(reflect.TypeOf(tc.row))
		api := jsonNames(reflect.TypeOf(tc.api))
		for name, opts := range row {
			if o, ok := api[name]; !ok {
				t.Errorf("%T shows %q, which %T does not have", tc.row, name, tc.api)
			} else if o != opts {
				t.Errorf("%T shows %q with options %q, %T with %q", tc.row, name, opts, tc.api, o)
			}
		}
		if _, isNode := tc.row.(restapi.UserNode); isNode {
			continue
		}
		extra := map[string]bool{}
		for _, e := range tc.extra {
			extra[e] = true
		}
		for name := range api {
			if _, ok := row[name]; !ok && !extra[name] {
				t.Errorf("%T has %q, which %T does not show and the test does not list", tc.api, name, tc.row)
			}
		}
	}
}
