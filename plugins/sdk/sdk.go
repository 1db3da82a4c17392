// Package sdk is the NullOps plugin contract and a tiny helper to write
// plugins in Go. A plugin is a container image whose entrypoint reads one
// JSON Input document on stdin, writes logs to stderr, prints one JSON
// Output document on stdout and exits 0; anything else fails the step.
// docs/plugins.md describes the contract for plugins in any language.
package sdk

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

// Deployment identifies the deployment a step runs for.
type Deployment struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	Project     string `json:"project,omitempty"`
	Environment string `json:"environment,omitempty"`
	Node        string `json:"node,omitempty"`
	// Network is the deployment's Docker network; the plugin is attached to
	// it only when the catalog entry says join_network.
	Network string `json:"network,omitempty"`
}

// Service is a service of the deployment that is already up, with its
// address inside the deployment network.
type Service struct {
	Host        string `json:"host"`    // the pipeline node id (DNS name in the network)
	Port        int    `json:"port"`    // container port, 0 if the service declares none
	Address     string `json:"address"` // host:port (or host)
	IP          string `json:"ip,omitempty"`
	ContainerID string `json:"container_id,omitempty"`
}

// Input is the JSON document a plugin receives on stdin.
type Input struct {
	Deployment Deployment                   `json:"deployment"`
	Step       string                       `json:"step"`
	Attempt    int                          `json:"attempt"`
	Params     map[string]any               `json:"params"`
	Secrets    map[string]string            `json:"secrets"`
	Services   map[string]Service           `json:"services"`
	Outputs    map[string]map[string]string `json:"outputs"` // by step id
}

// Output is the JSON document a plugin prints on stdout.
type Output struct {
	Outputs map[string]string `json:"outputs"`
	Message string            `json:"message,omitempty"`
}

// Param returns params[name] as a string ("" when absent); numbers and
// booleans are formatted.
func (in *Input) Param(name string) string {
	switch v := in.Params[name].(type) {
	case nil:
		return ""
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

// ParamDefault returns the parameter or def when it is empty.
func (in *Input) ParamDefault(name, def string) string {
	if v := in.Param(name); v != "" {
		return v
	}
	return def
}

// IntParam returns an integer parameter or def.
func (in *Input) IntParam(name string, def int) (int, error) {
	s := in.Param(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("param %s: %q is not an integer", name, s)
	}
	return n, nil
}

// DurationParam returns a Go-duration parameter ("30s") or def.
func (in *Input) DurationParam(name string, def time.Duration) (time.Duration, error) {
	s := in.Param(name)
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("param %s: %q is not a duration", name, s)
	}
	return d, nil
}

// Required returns the named parameters or an error naming the missing ones.
func (in *Input) Required(names ...string) (map[string]string, error) {
	out := map[string]string{}
	var missing []string
	for _, n := range names {
		v := in.Param(n)
		if v == "" {
			missing = append(missing, n)
		}
		out[n] = v
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("missing required params: %v", missing)
	}
	return out, nil
}

// ReadInput decodes the Input from r.
func ReadInput(r io.Reader) (*Input, error) {
	var in Input
	if err := json.NewDecoder(r).Decode(&in); err != nil {
		return nil, fmt.Errorf("read plugin input: %w", err)
	}
	return &in, nil
}

// WriteOutput encodes out to w.
func WriteOutput(w io.Writer, out Output) error {
	if out.Outputs == nil {
		out.Outputs = map[string]string{}
	}
	if err := json.NewEncoder(w).Encode(out); err != nil {
		return fmt.Errorf("write plugin output: %w", err)
	}
	return nil
}

// Logf writes a log line to stderr (it becomes the step's log).
func Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

// Fail writes the message to stderr and exits 1: the step fails and the
// message appears in its reason.
func Fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "error: "+format+"\n", args...)
	os.Exit(1)
}

// Run reads the input from stdin, calls fn and prints its output; an error
// from fn fails the step with that message.
func Run(fn func(in *Input) (Output, error)) {
	in, err := ReadInput(os.Stdin)
	if err != nil {
		Fail("%v", err)
	}
	out, err := fn(in)
	if err != nil {
		Fail("%v", err)
	}
	if err := WriteOutput(os.Stdout, out); err != nil {
		Fail("%v", err)
	}
	os.Exit(0)
}
