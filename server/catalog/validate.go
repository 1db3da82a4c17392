package catalog

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/nullops/nullops/internal/safetext"
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

func checkName(v Invalid, field, name, what string) {
	if !pipeline.IsDNSLabel(name) {
		v.add(field, "%s name must be a DNS label: lowercase letters, digits and -, at most 63, starting and ending with a letter or digit", what)
	}
}

func checkDescription(v Invalid, d string) {
	if len(d) > maxDescription {
		v.add("description", "at most %d characters", maxDescription)
	} else if err := safetext.Text(d); err != nil {
		v.add("description", "%s", err.Error())
	}
}

// registryExists adds a problem when registryID names no registry.
func registryExists(ctx context.Context, q store.Querier, v Invalid, registryID int64) error {
	if registryID <= 0 {
		v.add("registry_id", "required: the id of a registry")
		return nil
	}
	if _, err := store.GetRegistry(ctx, q, registryID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			v.add("registry_id", "no registry with id %d", registryID)
			return nil
		}
		return err
	}
	return nil
}

// ValidateRegistry checks a registry's fields.
func ValidateRegistry(in store.RegistryInput, password *string) error {
	v := Invalid{}
	checkName(v, "name", in.Name, "registry")
	if _, _, err := (registry.Endpoint{URL: in.URL, Insecure: in.Insecure}).Host(); err != nil {
		v.add("url", "%v", err)
	}
	if len(in.Username) > 255 {
		v.add("username", "at most 255 characters")
	}
	if password != nil && len(*password) > 4096 {
		v.add("password", "at most 4096 characters")
	}
	if password != nil && *password != "" && in.Username == "" {
		v.add("username", "required when a password is set")
	}
	return v.err()
}

// ValidateService checks a service's fields (and that its registry exists).
func ValidateService(ctx context.Context, q store.Querier, in store.ServiceInput) error {
	v := Invalid{}
	checkName(v, "name", in.Name, "service")
	if err := registryExists(ctx, q, v, in.RegistryID); err != nil {
		return err
	}
	if err := registry.ValidateImage(in.Image); err != nil {
		v.add("image", "%v", err)
	}
	switch in.TagMode {
	case store.TagModePinned:
		if err := registry.ValidateTag(in.Tag); err != nil {
			v.add("tag", "a pinned service needs a tag: %v", err)
		}
		if in.TagPattern != "" {
			v.add("tag_pattern", "only selectable services have a pattern")
		}
	case store.TagModeSelectable:
		if err := registry.ValidatePattern(in.TagPattern); err != nil {
			v.add("tag_pattern", "%v", err)
		}
		if in.Tag != "" {
			v.add("tag", "selectable services have a tag_pattern, not a tag")
		}
	default:
		v.add("tag_mode", "must be pinned or selectable")
	}
	if len(in.Ports) > maxPorts {
		v.add("ports", "at most %d ports", maxPorts)
	}
	seen := map[int]bool{}
	for _, p := range in.Ports {
		if p < 1 || p > 65535 {
			v.add("ports", "%d is not a TCP port (1-65535)", p)
		} else if seen[p] {
			v.add("ports", "port %d is listed twice", p)
		}
		seen[p] = true
	}
	checkEnv(v, "env", in.Env)
	if in.Health != nil {
		p := pipeline.Problems{}
		pipeline.CheckHealth(p, "health", in.Health)
		for f, m := range p {
			v.add(f, "%s", m)
		}
	}
	checkDescription(v, in.Description)
	return v.err()
}

func checkEnv(v Invalid, field string, env map[string]string) {
	if len(env) > maxEnvVars {
		v.add(field, "at most %d variables", maxEnvVars)
	}
	for k, val := range env {
		if !envNameRe.MatchString(k) {
			v.add(field, "%q is not a valid variable name", k)
			continue
		}
		if len(val) > maxEnvValue {
			v.add(field+"."+k, "at most %d bytes", maxEnvValue)
		}
		if strings.Contains(val, "${") {
			v.add(field+"."+k, "references like ${secrets.NAME} belong in a pipeline node's env, where they are checked")
		}
	}
}

// ValidatePlugin checks a plugin's fields, including that params_schema is
// a valid JSON schema.
func ValidatePlugin(ctx context.Context, q store.Querier, in store.PluginInput) error {
	v := Invalid{}
	checkName(v, "name", in.Name, "plugin")
	if err := registryExists(ctx, q, v, in.RegistryID); err != nil {
		return err
	}
	if err := registry.ValidateImage(in.Image); err != nil {
		v.add("image", "%v", err)
	}
	if err := registry.ValidateTag(in.Tag); err != nil {
		v.add("tag", "%v", err)
	}
	if _, err := pipeline.CompileSchema(in.ParamsSchema); err != nil {
		v.add("params_schema", "%v", err)
	}
	if in.CPU <= 0 || in.CPU > 64 {
		v.add("cpu", "must be more than 0 and at most 64")
	}
	if in.MemoryMB < 4 || in.MemoryMB > 1<<20 {
		v.add("memory_mb", "must be between 4 and %d", 1<<20)
	}
	if in.TimeoutSeconds < MinTimeout || in.TimeoutSeconds > MaxTimeout {
		v.add("timeout", "must be between 1s and 24h")
	}
	checkDescription(v, in.Description)
	return v.err()
}

// ValidateSecret checks a secret's name and value size.
func ValidateSecret(name string, value *string) error {
	v := Invalid{}
	if !pipeline.SecretNameRe.MatchString(name) {
		v.add("name", "must start with a letter or _ and hold letters, digits, _ or - (at most 128)")
	}
	if value != nil && len(*value) > MaxSecretBytes {
		v.add("value", "at most %d bytes", MaxSecretBytes)
	}
	return v.err()
}

// ValidateEnvironment checks an environment's fields.
func ValidateEnvironment(in store.EnvironmentInput) error {
	v := Invalid{}
	checkName(v, "name", in.Name, "environment")
	if len(in.BaseDomain) > 200 || !domainRe.MatchString(in.BaseDomain) {
		v.add("base_domain", "must be a lowercase DNS name such as qa.example.com")
	}
	if in.HostTemplate != "" {
		if err := ingresspub.ValidateHostTemplate(in.HostTemplate); err != nil {
			v.add("host_template", "%v", err)
		}
	}
	if in.DefaultTTLSeconds < 60 || in.DefaultTTLSeconds > 366*24*3600 {
		v.add("default_ttl", "must be between 1m and 8784h (a year)")
	}
	if in.CPUOvercommit != 0 && !(in.CPUOvercommit >= 1 && in.CPUOvercommit <= 10) {
		v.add("cpu_overcommit", "must be between 1 (other CPU use counts in full) and 10")
	}
	checkDescription(v, in.Description)
	return v.err()
}

// ValidateProject checks a project's fields, including its node selector.
func ValidateProject(in store.ProjectInput) error {
	v := Invalid{}
	checkName(v, "name", in.Name, "project")
	if in.CPU <= 0 || in.CPU > 1024 {
		v.add("cpu", "must be more than 0 and at most 1024")
	}
	if in.MemoryMB < 16 || in.MemoryMB > 1<<24 {
		v.add("memory_mb", "must be between 16 and %d", 1<<24)
	}
	if in.TTLSeconds != nil && (*in.TTLSeconds < 60 || *in.TTLSeconds > 366*24*3600) {
		v.add("ttl", "must be between 1m and 8784h (a year), or empty for the environment's default")
	}
	if in.DeployTimeoutSeconds != 0 && (in.DeployTimeoutSeconds < 60 || in.DeployTimeoutSeconds > 24*3600) {
		v.add("deploy_timeout", "must be between 1m and 24h, or empty for the default (30m)")
	}
	if _, err := placement.ParseSelector(in.NodeSelector); err != nil {
		v.add("node_selector", "%v", err)
	}
	checkDescription(v, in.Description)
	return v.err()
}

// pluginImage is the full image reference and pull credentials of a plugin.
func fmtImage(ep registry.Endpoint, image, tag string) (string, error) {
	ref, err := ep.ImageRef(image, tag)
	if err != nil {
		return "", fmt.Errorf("image %s:%s: %w", image, tag, err)
	}
	return ref, nil
}
