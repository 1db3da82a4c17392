package registry

import (
	"reflect"
	"testing"
)

func TestEndpointHostAndRefs(t *testing.T) {
	cases := []struct {
		url      string
		insecure bool
		host     string
		http     bool
		ref      string // ImageRef("team/api", "v1")
		hub      bool
	}{
		{"https://registry-1.docker.io", false, "registry-1.docker.io", false, "docker.io/team/api:v1", true},
		{"docker.io", false, "docker.io", false, "docker.io/team/api:v1", true},
		{"http://127.0.0.1:5000", false, "127.0.0.1:5000", true, "127.0.0.1:5000/team/api:v1", false},
		{"127.0.0.1:5000", true, "127.0.0.1:5000", true, "127.0.0.1:5000/team/api:v1", false},
		{"https://Registry.Example.com/", false, "registry.example.com", false, "registry.example.com/team/api:v1", false},
	}
	for _, tc := range cases {
		ep := Endpoint{URL: tc.url, Insecure: tc.insecure}
		host, insecure, err := ep.Host()
		if err != nil || host != tc.host || insecure != tc.http {
			t.Errorf("%s: host %q insecure %v err %v", tc.url, host, insecure, err)
		}
		ref, err := ep.ImageRef("team/api", "v1")
		if err != nil || ref != tc.ref {
			t.Errorf("%s: ref %q err %v, want %q", tc.url, ref, err, tc.ref)
		}
		if ep.IsDockerHub() != tc.hub {
			t.Errorf("%s: IsDockerHub %v", tc.url, !tc.hub)
		}
	}
	if ref, _ := (Endpoint{URL: "docker.io"}).ImageRef("nginx", "1.27"); ref != "docker.io/library/nginx:1.27" {
		t.Errorf("official image ref %q", ref)
	}
	for _, bad := range []string{"", "ftp://x", "https://host/path", "https://user:pw@host", "host with space", "a/b"} {
		if _, _, err := (Endpoint{URL: bad}).Host(); err == nil {
			t.Errorf("url %q accepted", bad)
		}
	}
}

func TestValidation(t *testing.T) {
	for _, ok := range []string{"v*", "1.2.*", "features-*", "main", "v[0-9]*", "?"} {
		if err := ValidatePattern(ok); err != nil {
			t.Errorf("pattern %q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "features/*", "[", "a\\"} {
		if err := ValidatePattern(bad); err == nil {
			t.Errorf("pattern %q accepted", bad)
		}
	}
	for _, ok := range []string{"library/nginx", "team/api", "a", "a-b/c.d/e__f"} {
		if err := ValidateImage(ok); err != nil {
			t.Errorf("image %q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "Team/api", "team/api:v1", "/a", "a//b", "host.io:5000/a"} {
		if err := ValidateImage(bad); err == nil {
			t.Errorf("image %q accepted", bad)
		}
	}
	for _, bad := range []string{"", ".x", "-x", "a/b", "a:b"} {
		if err := ValidateTag(bad); err == nil {
			t.Errorf("tag %q accepted", bad)
		}
	}
	if !MatchTag("features-*", "features-login") || MatchTag("v*", "main") || !MatchTag("", "x") {
		t.Error("MatchTag")
	}
}

func TestSemverOrder(t *testing.T) {
	tags := []string{"v1.0.0", "v1.10.0", "v1.2.0", "v2.0.0-rc.1", "v2.0.0", "1.9"}
	if !sortSemver(tags) {
		t.Fatal("versions not recognised")
	}
	want := []string{"v2.0.0", "v2.0.0-rc.1", "v1.10.0", "1.9", "v1.2.0", "v1.0.0"}
	if !reflect.DeepEqual(tags, want) {
		t.Fatalf("got %v, want %v", tags, want)
	}
	if sortSemver([]string{"v1.0.0", "main"}) {
		t.Fatal("main is not a version")
	}
}
