package config

import (
	"strings"
	"testing"
)

func TestIngressLinkValidation(t *testing.T) {
	for _, c := range []struct {
		scheme string
		port   int
		key    string
	}{
		{"http", 0, ""},
		{"https", 8443, ""},
		{"ftp", 0, "ingress.linkscheme"},
		{"http", 70000, "ingress.linkport"},
		{"http", -1, "ingress.linkport"},
	} {
		cfg := Defaults()
		cfg.Ingress.LinkScheme, cfg.Ingress.LinkPort = c.scheme, c.port
		err := cfg.Validate()
		if c.key == "" && err != nil && strings.HasPrefix(err.Error(), "ingress.") {
			t.Errorf("%s:%d refused: %v", c.scheme, c.port, err)
		}
		if c.key != "" && (err == nil || !strings.HasPrefix(err.Error(), c.key)) {
			t.Errorf("%s:%d: %v, want an error naming %s", c.scheme, c.port, err, c.key)
		}
	}
}
