package deploy_test

import (
	"testing"

	"github.com/nullops/nullops/server/deploy"
)

func TestLinks(t *testing.T) {
	host := "web.pr-42.qa.example.com"
	for _, c := range []struct {
		links deploy.Links
		want  string
	}{
		{deploy.Links{}, "http://web.pr-42.qa.example.com"},
		{deploy.Links{Scheme: "http", Port: 80}, "http://web.pr-42.qa.example.com"},
		{deploy.Links{Scheme: "https", Port: 443}, "https://web.pr-42.qa.example.com"},
		{deploy.Links{Scheme: "http", Port: 8000}, "http://web.pr-42.qa.example.com:8000"},
		{deploy.Links{Scheme: "https", Port: 80}, "https://web.pr-42.qa.example.com:80"},
	} {
		if got := c.links.URL(host); got != c.want {
			t.Errorf("%+v: %s, want %s", c.links, got, c.want)
		}
	}
}
