package dynconfig

import (
	"testing"
)

func TestDecodeGoneRefusesBadInput(t *testing.T) {
	for _, bad := range []string{``, `{"hosts":[{"host":"x y"}]}`, `{"hosts":[],"extra":1}`, `[]`} {
		if _, err := DecodeGone([]byte(bad)); err == nil {
			t.Errorf("DecodeGone(%q) accepted it", bad)
		}
	}
	doc, err := DecodeGone([]byte(`{"hosts":[{"host":"web.pr-1.qa.example.test","deployment_id":1,"deployment":"pr-1","environment":"qa","service":"web","reason":"deleted","by":"alice","at":"2026-11-30T10:00:00Z"}]}`))
	if err != nil || len(doc.Hosts) != 1 || doc.Hosts[0].By != "alice" {
		t.Fatalf("%+v %v", doc, err)
	}
}

func FuzzDecodeGone(f *testing.F) {
	f.Add([]byte(`{"hosts":[{"host":"web.pr-1.qa.example.test","deployment_id":1,"reason":"expired","at":"2026-11-30T10:00:00Z"}]}`))
	f.Add([]byte(`{"hosts":null}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := DecodeGone(data)
		if err != nil {
			return
		}
		for _, h := range doc.Hosts {
			if err := CheckHostname(h.Host); err != nil {
				t.Fatalf("accepted bad host %q", h.Host)
			}
		}
	})
}
