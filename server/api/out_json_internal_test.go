package api

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/nullops/nullops/restapi"
)

// TestDeploymentListEncodingMatches: appendDeploymentList writes exactly
// what encoding/json's Encoder writes for the same page (what
// RenderCappedList sends), for rows whose every field reflection sets (so
// a field added to restapi.Deployment fails this test until the encoder
// writes it), with strings that need escaping, floats of every format,
// times with and without nanoseconds and zones, nil pointers and maps.
func TestDeploymentListEncodingMatches(t *testing.T) {
	strs := []string{"pr-42", `<a href="x">&amp;</a>`, "tab\tnew\nline\r\\ \x00\x1f", "é ü 漢字 \u2028\u2029", "bad \xff utf8", "R&D", "a>b", ""}
	floats := []float64{0, 0.1, 2.5, 1e-7, 1e21, 123456789.125, -2.5e-9, 1e20}
	zones := []*time.Location{time.UTC, time.FixedZone("x", -(3*3600 + 30*60)), time.FixedZone("y", 14*3600)}
	var items []restapi.Deployment
	for i := range 24 {
		var d restapi.Deployment
		v := reflect.ValueOf(&d).Elem()
		for f := range v.NumField() {
			field, sf := v.Field(f), v.Type().Field(f)
			if sf.Name == "Detail" {
				continue
			}
			if (i+f)%5 == 0 && (field.Kind() == reflect.Pointer || field.Kind() == reflect.Map) {
				continue // nil
			}
			ts := time.Date(2026, 12, 1, 5, i, f, (i*f)%3*123456789, zones[(i+f)%len(zones)])
			s := strs[(i+f)%len(strs)]
			switch x := field.Addr().Interface().(type) {
			case *int64:
				*x = int64(i*1000 + f)
			case *int:
				*x = i*10 + f
			case *string:
				*x = s
			case *bool:
				*x = (i+f)%2 == 0
			case *float64:
				*x = floats[(i+f)%len(floats)]
			case **int64:
				n := int64(-i - f)
				*x = &n
			case *time.Time:
				*x = ts
			case **time.Time:
				*x = &ts
			case *map[string]string:
				m := map[string]string{}
				for k := range i % 4 {
					m[strs[(k+f)%len(strs)]+string(rune('a'+k))] = strs[(k+i)%len(strs)]
				}
				*x = m
			default:
				t.Fatalf("field %s of type %s: teach this test and appendDeployment about it", sf.Name, sf.Type)
			}
		}
		items = append(items, d)
	}
	for _, c := range []struct {
		items  []restapi.Deployment
		total  int
		capped bool
	}{{items, 1000, true}, {items[:1], 1, false}, {nil, 0, false}, {[]restapi.Deployment{{}}, 7, false}} {
		p := Page{Page: 3, PerPage: 25}
		var want bytes.Buffer
		out := c.items
		if out == nil {
			out = []restapi.Deployment{}
		}
		if err := json.NewEncoder(&want).Encode(restapi.List[restapi.Deployment]{Items: out, Total: c.total, TotalCapped: c.capped, Page: p.Page, PerPage: p.PerPage}); err != nil {
			t.Fatal(err)
		}
		got := appendDeploymentList(nil, c.items, c.total, c.capped, p)
		if !bytes.Equal(got, want.Bytes()) {
			i := 0
			for i < len(got) && i < len(want.Bytes()) && got[i] == want.Bytes()[i] {
				i++
			}
			t.Fatalf("encodings differ at byte %d:\n got  …%s\n want …%s", i, got[max(0, i-80):min(len(got), i+80)], want.Bytes()[max(0, i-80):min(want.Len(), i+80)])
		}
	}
}
