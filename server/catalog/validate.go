package catalog

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/nullops/nullops/internal/safetext"
	"github.com/nullops/nullops/server/errs"
	"github.com/nullops/nullops/server/ingresspub"
	"github.com/nullops/nullops/server/pipeline"
	"github.com/nullops/nullops/server/placement"
	"github.com/nullops/nullops/server/registry"
	"github.com/nullops/nullops/server/store"
)

// Limits on catalog input.
const (
	maxDescription = 2000
	maxPorts       = 32
	maxEnvVars     = 200
	maxEnvValue    = 32 << 10
	MaxSecretBytes = 64 << 10
	MinTimeout     = 1     // seconds
	MaxTimeout     = 86400 // seconds
)

var (
	envNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,254}$`)
	domainRe  = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

func checkName(v errs.Fields, field, name, what string) {
	if !pipeline.IsDNSLabel(name) {
		v.Add(field, "%s name must be a DNS label: lowercase letters, digits and -, at most 63, starting and ending with a letter or digit", what)
	}
}

func checkDescription(v errs.Fields, d string) {
	if len(d) > maxDescription {
		v.Add("description", "at most %d characters", maxDescription)
	} else if err := safetext.Text(d); err != nil {
		v.Add("description", "%s", err.Error())
	}
}

// registryExists adds a problem when registryID names no registry.
func registryExists(ctx context.Context, q store.Querier, v errs.Fields, registryID int64) error {
	if registryID <= 0 {
		v.Add("registry_id", "required: the id of a registry")
		return nil
	}
	if _, err := store.GetRegistry(ctx, q, registryID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			v.Add("registry_id", "no registry with id %d", registryID)
			return nil
		}
		return err
	}
	return nil
}

// ValidateRegistry checks a registry's fields.
func ValidateRegistry(in store.RegistryInput, password *string) error {
	v := errs.Fields{}
	checkName(v, "name", in.Name, "registry")
	if _, _, err := (registry.Endpoint{URL: in.URL, Insecure: in.Insecure}).Host(); err != nil {
		v.Add("url", "%v", err)
	}
	if len(in.Username) > 255 {
		v.Add("username", "at most 255 characters")
	}
	if password != nil && len(*password) > 4096 {
		v.Add("password", "at most 4096 characters")
	}
	if password != nil && *password != "" && in.Username == "" {
		v.Add("username", "required when a password is set")
	}
	return v.Err()
}

// ValidateService checks a service's fields (and that its registry exists).
func ValidateService(ctx context.Context, q store.Querier, in store.ServiceInput) error {
	v := errs.Fields{}
	checkName(v, "name", in.Name, "service")
	if err := registryExists(ctx, q, v, in.RegistryID); err != nil {
		return err
	}
	if err := registry.ValidateImage(in.Image); err != nil {
		v.Add("image", "%v", err)
	}
	switch in.TagMode {
	case store.TagModePinned:
		if err := registry.ValidateTag(in.Tag); err != nil {
			v.Add("tag", "a pinned service needs a tag: %v", err)
		}
		if in.TagPattern != "" {
			v.Add("tag_pattern", "only selectable services have a pattern")
		}
	case store.TagModeSelectable:
		if err := registry.ValidatePattern(in.TagPattern); err != nil {
			v.Add("tag_pattern", "%v", err)
		}
		if in.Tag != "" {
			v.Add("tag", "selectable services have a tag_pattern, not a tag")
		}
	default:
		v.Add("tag_mode", "must be pinned or selectable")
	}
	if len(in.Ports) > maxPorts {
		v.Add("ports", "at most %d ports", maxPorts)
	}
	seen := map[int]bool{}
	for _, p := range in.Ports {
		if p < 1 || p > 65535 {
			v.Add("ports", "%d is not a TCP port (1-65535)", p)
		} else if seen[p] {
			v.Add("ports", "port %d is listed twice", p)
		}
		seen[p] = true
	}
	checkEnv(v, "env", in.Env)
	if in.Health != nil {
		p := errs.Fields{}
		pipeline.CheckHealth(p, "health", in.Health)
		for f, m := range p {
			v.Add(f, "%s", m)
		}
	}
	checkDescription(v, in.Description)
	return v.Err()
}

func checkEnv(v errs.Fields, field string, env map[string]string) {
	if len(env) > maxEnvVars {
		v.Add(field, "at most %d variables", maxEnvVars)
	}
	for k, val := range env {
		if !envNameRe.MatchString(k) {
			v.Add(field, "%q is not a valid variable name", k)
			continue
		}
		if len(val) > maxEnvValue {
			v.Add(field+"."+k, "at most %d bytes", maxEnvValue)
		}
		if strings.Contains(val, "${") {
			v.Add(field+"."+k, "references like ${secrets.NAME} belong in a pipeline node's env, where they are checked")
		}
	}
}

// ValidatePlugin checks a plugin's fields, including that params_schema is
// a valid JSON schema.
func ValidatePlugin(ctx context.Context, q store.Querier, in store.PluginInput) error {
	v := errs.Fields{}
	checkName(v, "name", in.Name, "plugin")
	if err := registryExists(ctx, q, v, in.RegistryID); err != nil {
		return err
	}
	if err := registry.ValidateImage(in.Image); err != nil {
		v.Add("image", "%v", err)
	}
	if err := registry.ValidateTag(in.Tag); err != nil {
		v.Add("tag", "%v", err)
	}
	if _, err := pipeline.CompileSchema(in.ParamsSchema); err != nil {
		v.Add("params_schema", "%v", err)
	}
	if in.CPU <= 0 || in.CPU > 64 {
		v.Add("cpu", "must be more than 0 and at most 64")
	}
	if in.MemoryMB < 4 || in.MemoryMB > 1<<20 {
		v.Add("memory_mb", "must be between 4 and %d", 1<<20)
	}
	if in.TimeoutSeconds < MinTimeout || in.TimeoutSeconds > MaxTimeout {
		v.Add("timeout", "must be between 1s and 24h")
	}
	checkDescription(v, in.Description)
	return v.Err()
}

// ValidateSecret checks a secret's name and value size.
func ValidateSecret(name string, value *string) error {
	v := errs.Fields{}
	if !pipeline.SecretNameRe.MatchString(name) {
		v.Add("name", "must start with a letter or _ and hold letters, digits, _ or - (at most 128)")
	}
	if value != nil && len(*value) > MaxSecretBytes {
		v.Add("value", "at most %d bytes", MaxSecretBytes)
	}
	return v.Err()
}

// ValidateEnvironment checks an environment's fields.
func ValidateEnvironment(in store.EnvironmentInput) error {
	v := errs.Fields{}
	checkName(v, "name", in.Name, "environment")
	if len(in.BaseDomain) > 200 || !domainRe.MatchString(in.BaseDomain) {
		v.Add("base_domain", "must be a lowercase DNS name such as qa.example.com")
	}
	if in.HostTemplate != "" {
		if err := ingresspub.ValidateHostTemplate(in.HostTemplate); err != nil {
			v.Add("host_template", "%v", err)
		}
	}
	if in.DefaultTTLSeconds < 60 || in.DefaultTTLSeconds > 366*24*3600 {
		v.Add("default_ttl", "must be between 1m and 8784h (a year)")
	}
	if in.CPUOvercommit != 0 && !(in.CPUOvercommit >= 1 && in.CPUOvercommit <= 10) {
		v.Add("cpu_overcommit", "must be between 1 (other CPU use counts in full) and 10")
	}
	checkDescription(v, in.Description)
	return v.Err()
}

// ValidateProject checks a project's fields, including its node selector.
func ValidateProject(in store.ProjectInput) error {
	v := errs.Fields{}
	checkName(v, "name", in.Name, "project")
	if in.CPU <= 0 || in.CPU > 1024 {
		v.Add("cpu", "must be more than 0 and at most 1024")
	}
	if in.MemoryMB < 16 || in.MemoryMB > 1<<24 {
		v.Add("memory_mb", "must be between 16 and %d", 1<<24)
	}
	if in.TTLSeconds != nil && (*in.TTLSeconds < 60 || *in.TTLSeconds > 366*24*3600) {
		v.Add("ttl", "must be between 1m and 8784h (a year), or empty for the environment's default")
	}
	if in.DeployTimeoutSeconds != 0 && (in.DeployTimeoutSeconds < 60 || in.DeployTimeoutSeconds > 24*3600) {
		v.Add("deploy_timeout", "must be between 1m and 24h, or empty for the default (30m)")
	}
	if _, err := placement.ParseSelector(in.NodeSelector); err != nil {
		v.Add("node_selector", "%v", err)
	}
	checkDescription(v, in.Description)
	return v.Err()
}

// pluginImage is the full image reference and pull credentials of a plugin.
func fmtImage(ep registry.Endpoint, image, tag string) (string, error) {
	ref, err := ep.ImageRef(image, tag)
	if err != nil {
		return "", fmt.Errorf("image %s:%s: %w", image, tag, err)
	}
	return ref, nil
}
