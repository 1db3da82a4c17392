package api

import (
	"reflect"
	"strings"
	"testing"

	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/store"
)

// jsonNames lists the JSON field names of struct type t (embedded structs
// flattened, "-" left out).
func jsonNames(t reflect.Type) map[string]bool {
	out := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			for k := range jsonNames(ft) {
				out[k] = true
			}
			continue
		}
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = true
	}
	return out
}

// TestContractCoversTheRows: every field a store row shows in JSON has its
// place in the REST type the API encodes it as, so a column added to a row
// cannot silently miss the API (out.go converts field by field).
func TestContractCoversTheRows(t *testing.T) {
	for _, tc := range []struct{ row, api any }{
		{store.Deployment{}, restapi.Deployment{}},
		{store.DeploymentStep{}, restapi.DeploymentStep{}},
		{store.DeploymentService{}, restapi.DeploymentService{}},
		{store.StepLogLine{}, restapi.LogChunk{}},
		{store.User{}, restapi.User{}},
		{store.Team{}, restapi.Team{}},
		{store.APIToken{}, restapi.APIToken{}},
		{store.Project{}, restapi.Project{}},
		{store.Environment{}, restapi.Environment{}},
	} {
		api := jsonNames(reflect.TypeOf(tc.api))
		for name := range jsonNames(reflect.TypeOf(tc.row)) {
			if !api[name] {
				t.Errorf("%T shows %q, which %T does not have", tc.row, name, tc.api)
			}
		}
	}
}
