package ingresspub

import (
	"strings"
	"testing"
)

func TestHostNames(t *testing.T) {
	def := HostNames{Environment: "qa", BaseDomain: "Example.com."}
	if h, err := def.Host("PR-42", "api"); err != nil || h != "api.pr-42.qa.example.com" {
		t.Errorf("default template: %q, %v", h, err)
	}
	flat := HostNames{Environment: "qa", BaseDomain: "example.com", Template: FlatHostTemplate}
	if h, err := flat.Host("pr-42", "api"); err != nil || h != "api--pr-42.qa.example.com" {
		t.Errorf("flat template: %q, %v", h, err)
	}
}

func TestCheckDeploymentHosts(t *testing.T) {
	env := HostNames{Environment: "qa", BaseDomain: "example.com", Template: FlatHostTemplate}
	if err := CheckDeploymentHosts(env, strings.Repeat("d", 40), []string{"api", "web"}); err != nil {
		t.Errorf("40-character name refused: %v", err)
	}
	// With the flat template service and deployment share one label:
	// "frontend--" + 55 characters = 65 > 63.
	err := CheckDeploymentHosts(env, strings.Repeat("d", 55), []string{"api", "frontend"})
	if err == nil {
		t.Fatal("a host label of 65 characters was accepted")
	}
	msg := err.Error()
	for _, want := range []string{`service "frontend"`, "65 characters", "at most 63", "choose a shorter"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, `service "api"`) {
		t.Errorf("api's host (60 characters) is valid but reported: %v", msg)
	}
	if err := CheckDeploymentHosts(HostNames{Environment: "qa", BaseDomain: "example.com"}, "my_branch", []string{"web"}); err == nil || !strings.Contains(err.Error(), "may only contain") {
		t.Errorf("underscore in a deployment name: %v", err)
	}
}

func TestValidateHostTemplate(t *testing.T) {
	for _, ok := range []string{"", DefaultHostTemplate, FlatHostTemplate, "<deployment>-<service>.apps.example.com"} {
		if err := ValidateHostTemplate(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for tpl, want := range map[string]string{
		"<service>.<environment>.<base-domain>":            "must contain both",
		"<service>.<deployment>.<env>.<base-domain>":       "unknown placeholder",
		"<service>_<deployment>.<environment>.example.com": "may only contain",
		"<service>..<deployment>":                          "empty label",
	} {
		if err := ValidateHostTemplate(tpl); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ValidateHostTemplate(%q) = %v, want %q", tpl, err, want)
		}
	}
}
