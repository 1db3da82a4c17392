package executor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nullops/nullops/agent/runtime"
	"github.com/nullops/nullops/plugins/sdk"
	"github.com/nullops/nullops/protocol"
)

// maxPluginStdout bounds the JSON document a plugin may print.
const maxPluginStdout = 1 << 20

// pluginInput builds the stdin document of the plugin contract. The
// plugin gets only the secrets its own parameters reference, not every
// secret of the pipeline: in earlier steps' outputs, the values of the
// other secrets arrive as their ${secrets.NAME} placeholders.
func (p *pipeline) pluginInput(n protocol.Node, attempt int, params map[string]any) sdk.Input {
	in := sdk.Input{
		Deployment: sdk.Deployment{
			ID: p.id(), Name: p.spec.Name, Project: p.spec.Project, Environment: p.spec.Environment,
			Node: p.e.rt.Node(), Network: p.network.Name,
		},
		Step: n.ID, Attempt: attempt, Params: params, Secrets: map[string]string{},
		Services: map[string]sdk.Service{}, Outputs: map[string]map[string]string{},
	}
	refs := map[string]bool{}
	referencedSecrets(map[string]any(n.Params), refs)
	for name := range refs {
		if v, ok := p.spec.Secrets[name]; ok {
			in.Secrets[name] = v
		}
	}
	if in.Params == nil {
		in.Params = map[string]any{}
	}
	nodes := map[string]protocol.Node{}
	for _, gn := range p.spec.Graph.Nodes {
		nodes[gn.ID] = gn
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, info := range p.services {
		port := servicePort(p.spec, nodes[id])
		addr := id
		if port > 0 {
			addr += ":" + strconv.Itoa(port)
		}
		s := sdk.Service{Host: id, Port: port, Address: addr, ContainerID: info.ID}
		if info.IP.IsValid() {
			s.IP = info.IP.String()
		}
		in.Services[id] = s
	}
	others := map[string]string{}
	for name, v := range p.spec.Secrets {
		if !refs[name] {
			others[name] = v
		}
	}
	hide := newRedactor(others)
	for id, o := range p.outputs {
		in.Outputs[id] = hide.placeholderMap(o)
	}
	return in
}

// runPlugin runs one attempt of a component node through the plugin
// contract (docs/architecture.md, "Agent"; docs/plugins.md).
func (p *pipeline) runPlugin(ctx context.Context, n protocol.Node, attempt int) (map[string]string, bool, error) {
	pi := p.spec.Plugins[n.ID]
	if pi.DockerSocket && !p.e.rt.Capabilities().DockerSocket {
		return nil, false, fmt.Errorf("plugin %s needs the Docker socket (an admin enabled docker_socket on it), which the %s runtime of this node cannot give",
			pi.Name, p.e.rt.Name())
	}
	if pi.DockerSocket && !p.e.cfg.AllowDockerSocket {
		return nil, false, fmt.Errorf("plugin %s needs the Docker socket (an admin enabled docker_socket on it), which this node does not allow; "+
			"the node's operator can allow it with --docker.pluginsocket (NULLOPS_DOCKER_PLUGINSOCKET=true)", pi.Name)
	}
	timeout := p.e.cfg.PluginTimeout
	if pi.Timeout != "" {
		d, err := time.ParseDuration(pi.Timeout)
		if err != nil || d <= 0 {
			return nil, false, fmt.Errorf("plugin %s: invalid timeout %q", pi.Name, pi.Timeout)
		}
		timeout = d
	}
	params, err := p.scopeFor(n.ID).expandAny(map[string]any(n.Params))
	if err != nil {
		return nil, false, fmt.Errorf("params %w", err)
	}
	pm, _ := params.(map[string]any)
	input, err := json.Marshal(p.pluginInput(n, attempt, pm))
	if err != nil {
		return nil, false, fmt.Errorf("encode plugin input: %w", err)
	}
	logLine := func(s string) { p.stepLogLine(n.ID, attempt, s) }
	pulled, err := p.e.ensureImage(ctx, pi.Image, pi.Auth, func(l string) { logLine("pull: " + l) })
	if err != nil {
		switch {
		case errors.Is(err, runtime.ErrImageNotFound):
			return nil, true, fmt.Errorf("plugin image missing: %v", err)
		case errors.Is(err, runtime.ErrAccessDenied):
			return nil, false, fmt.Errorf("plugin image not confirmed for this plugin's registry credentials: %v", err)
		default:
			return nil, true, fmt.Errorf("plugin image pull failed: %v", err)
		}
	}
	if pulled {
		logLine("pulled " + pi.Image)
	}
	stderr := newStepLog(p.e.cfg.LogCapBytes, p.red, func(chunk string) {
		p.e.emit(protocol.StepLog{DeploymentID: p.id(), Step: n.ID, Attempt: attempt, Chunk: chunk, At: time.Now().UTC()})
	})
	stdout := &limitedBuffer{max: maxPluginStdout}
	spec := runtime.OneShotSpec{
		DeploymentID: p.id(), Step: n.ID, Attempt: attempt, Image: pi.Image, Auth: pi.Auth, Input: input,
		Resources: pi.Resources, Timeout: timeout, Stdout: stdout, Stderr: stderr,
	}
	if pi.JoinNetwork {
		spec.Network = p.network.Name
	}
	if pi.DockerSocket {
		spec.DockerSocket = p.e.cfg.DockerSocket
	}
	res, err := p.e.rt.RunOneShot(ctx, spec)
	stderr.Close()
	tail := stderr.Tail()
	withTail := func(msg string) error {
		if tail != "" {
			msg += "; stderr tail:\n" + tail
		}
		return errors.New(msg)
	}
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, false, ctx.Err()
	case err != nil:
		return nil, true, withTail(fmt.Sprintf("plugin container failed: %v", err))
	case res.TimedOut:
		return nil, true, withTail(fmt.Sprintf("timed out after %s", timeout))
	case res.OOMKilled:
		return nil, true, withTail(fmt.Sprintf("plugin killed: out of memory (limit %d MB)", pi.Resources.MemoryMB))
	case res.ExitCode != 0:
		return nil, true, withTail(fmt.Sprintf("plugin exited with code %d", res.ExitCode))
	case stdout.over:
		return nil, false, withTail(fmt.Sprintf("plugin printed more than %d bytes on stdout", maxPluginStdout))
	}
	outputs, msg, err := parseOutput(stdout.Bytes())
	if err != nil {
		return nil, false, withTail(err.Error())
	}
	if msg != "" {
		logLine(msg)
	}
	return outputs, false, nil
}

// parseOutput decodes the plugin's stdout document. Output values that are
// not strings are kept as their JSON text.
func parseOutput(b []byte) (map[string]string, string, error) {
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) == 0 {
		return nil, "", errors.New("invalid JSON on stdout: plugin printed nothing (want {\"outputs\":{...}})")
	}
	if trimmed[0] != '{' {
		return nil, "", fmt.Errorf("invalid JSON on stdout: want an object like {\"outputs\":{...}}; stdout starts with %q", head(trimmed, 200))
	}
	var doc struct {
		Outputs map[string]json.RawMessage `json:"outputs"`
		Message string                     `json:"message"`
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if err := dec.Decode(&doc); err != nil {
		return nil, "", fmt.Errorf("invalid JSON on stdout: %v; stdout starts with %q", err, head(trimmed, 200))
	}
	if dec.More() {
		return nil, "", fmt.Errorf("invalid JSON on stdout: more than one document; stdout starts with %q", head(trimmed, 200))
	}
	out := make(map[string]string, len(doc.Outputs))
	for k, raw := range doc.Outputs {
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			out[k] = s
			continue
		}
		out[k] = strings.TrimSpace(string(raw))
	}
	return out, doc.Message, nil
}

func head(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// limitedBuffer keeps the first max bytes and notes overflow.
type limitedBuffer struct {
	bytes.Buffer
	max  int
	over bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > b.max {
		b.over = true
		room := b.max - b.Len()
		if room > 0 {
			b.Buffer.Write(p[:room])
		}
		return len(p), nil
	}
	return b.Buffer.Write(p)
}
