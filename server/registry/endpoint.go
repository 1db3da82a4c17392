package registry

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Endpoint is one registry with its (decrypted, in-memory) credentials.
type Endpoint struct {
	URL      string // https://registry-1.docker.io, http://127.0.0.1:5000 or 127.0.0.1:5000
	Insecure bool   // plain HTTP (also implied by an http:// URL)
	Username string
	Password string
}

// dockerHubHosts are the names Docker Hub answers to; they all map to
// go-containerregistry's default registry, which adds "library/" to
// single-component image names.
var dockerHubHosts = map[string]bool{
	"docker.io": true, "index.docker.io": true, "registry-1.docker.io": true, "registry.hub.docker.com": true,
}

// Host parses the endpoint URL into a registry host[:port] and whether it
// is spoken to over plain HTTP.
func (e Endpoint) Host() (host string, insecure bool, err error) {
	raw := strings.TrimSpace(e.URL)
	insecure = e.Insecure
	if raw == "" {
		return "", false, errors.New("registry URL is empty")
	}
	if strings.Contains(raw, "://") {
		u, err := url.Parse(raw)
		if err != nil {
			return "", false, fmt.Errorf("registry URL %q: %v", raw, err)
		}
		switch u.Scheme {
		case "https":
		case "http":
			insecure = true
		default:
			return "", false, fmt.Errorf("registry URL %q: scheme must be http or https", raw)
		}
		if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
			return "", false, fmt.Errorf("registry URL %q: give only scheme and host[:port]", raw)
		}
		raw = u.Host
	}
	if raw == "" || strings.ContainsAny(raw, "/ ?#@") {
		return "", false, fmt.Errorf("registry URL %q: give only scheme and host[:port]", e.URL)
	}
	if _, err := name.NewRegistry(raw); err != nil {
		return "", false, fmt.Errorf("registry URL %q: %v", e.URL, err)
	}
	return strings.ToLower(raw), insecure, nil
}

// IsDockerHub reports whether the endpoint is Docker Hub.
func (e Endpoint) IsDockerHub() bool {
	h, _, err := e.Host()
	return err == nil && dockerHubHosts[h]
}

func (e Endpoint) registry() (name.Registry, error) {
	host, insecure, err := e.Host()
	if err != nil {
		return name.Registry{}, err
	}
	if dockerHubHosts[host] {
		host = name.DefaultRegistry
	}
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	return name.NewRegistry(host, opts...)
}

// repository parses image (a repository path without host or tag).
func (e Endpoint) repository(image string) (name.Repository, error) {
	if err := ValidateImage(image); err != nil {
		return name.Repository{}, err
	}
	reg, err := e.registry()
	if err != nil {
		return name.Repository{}, err
	}
	return reg.Repo(image), nil
}

var (
	imageRe = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagRe   = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
)

// ValidateImage checks a repository path such as "library/nginx" or
// "team/api" (no registry host, no tag).
func ValidateImage(image string) error {
	if image == "" {
		return errors.New("image is required, e.g. team/api")
	}
	if len(image) > 255 || !imageRe.MatchString(image) {
		return fmt.Errorf("%q is not a repository path (lowercase letters, digits, separators . _ - and /; no host, no tag)", image)
	}
	return nil
}

// ValidateTag checks a Docker tag.
func ValidateTag(tag string) error {
	if !tagRe.MatchString(tag) {
		return fmt.Errorf("%q is not a valid tag (letters, digits, _ . -, at most 128, not starting with . or -)", tag)
	}
	return nil
}

// ValidatePattern checks a glob tag pattern (path.Match syntax: * ? [a-z]).
// Tags cannot contain "/", so "features/*" is written "features-*".
func ValidatePattern(pattern string) error {
	if pattern == "" {
		return errors.New("pattern is required, e.g. v* or features-*")
	}
	if len(pattern) > 128 {
		return errors.New("pattern is longer than 128 characters")
	}
	if strings.Contains(pattern, "/") {
		return errors.New("tags cannot contain /; write features-* instead of features/*")
	}
	if _, err := path.Match(pattern, ""); err != nil {
		return fmt.Errorf("%q is not a valid glob pattern: %v", pattern, err)
	}
	return nil
}

// MatchTag reports whether tag matches the glob pattern ("" matches all).
func MatchTag(pattern, tag string) bool {
	if pattern == "" {
		return true
	}
	ok, err := path.Match(pattern, tag)
	return err == nil && ok
}

// ImageRef is the full pull reference of image:tag on this registry, as the
// Docker Engine understands it (Docker Hub images as docker.io/<repo>).
func (e Endpoint) ImageRef(image, tag string) (string, error) {
	if err := ValidateImage(image); err != nil {
		return "", err
	}
	if err := ValidateTag(tag); err != nil {
		return "", err
	}
	host, _, err := e.Host()
	if err != nil {
		return "", err
	}
	if dockerHubHosts[host] {
		if !strings.Contains(image, "/") {
			image = "library/" + image
		}
		return "docker.io/" + image + ":" + tag, nil
	}
	return host + "/" + image + ":" + tag, nil
}

// ServerAddress is the registry address credentials apply to (the Docker
// Engine's X-Registry-Auth serveraddress).
func (e Endpoint) ServerAddress() string {
	host, _, err := e.Host()
	if err != nil {
		return ""
	}
	if dockerHubHosts[host] {
		return "docker.io"
	}
	return host
}
