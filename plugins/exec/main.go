// Command exec is a NullOps plugin that runs a command inside a running
// service container of the same deployment (migrations, seed scripts, cache
// warm-up…), e.g. params {"service": "api", "command": ["/app", "migrate"]}.
//
// Design: the agent bind-mounts the Docker socket into this plugin when an
// admin enabled docker_socket on its catalog entry and the node's agent
// allows it (--docker.pluginsocket), and gives it the container id of every running service in the input's
// "services". The plugin refuses containers whose nullops.deployment and
// nullops.node labels are not those of its own deployment.
//
// Params: service (required), command (array of strings, or a string split
// on spaces; required), expect_exit (default 0), timeout (default 5m).
// Outputs: exit_code, output (combined stdout+stderr, first 8 KiB).
package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nullops/nullops/agent/docker"
	"github.com/nullops/nullops/plugins/sdk"
)

func main() {
	sdk.Run(func(in *sdk.Input) (sdk.Output, error) { return run(context.Background(), in) })
}

func command(in *sdk.Input) ([]string, error) {
	switch v := in.Params["command"].(type) {
	case []any:
		var out []string
		for _, a := range v {
			s, ok := a.(string)
			if !ok {
				return nil, fmt.Errorf("command: every element must be a string, got %T", a)
			}
			out = append(out, s)
		}
		if len(out) > 0 {
			return out, nil
		}
	case string:
		if f := strings.Fields(v); len(f) > 0 {
			return f, nil
		}
	}
	return nil, fmt.Errorf("command is required (array of strings or a string)")
}

func run(ctx context.Context, in *sdk.Input) (sdk.Output, error) {
	req, err := in.Required("service")
	if err != nil {
		return sdk.Output{}, err
	}
	cmd, err := command(in)
	if err != nil {
		return sdk.Output{}, err
	}
	expect, err := in.IntParam("expect_exit", 0)
	if err != nil {
		return sdk.Output{}, err
	}
	timeout, err := in.DurationParam("timeout", 5*time.Minute)
	if err != nil {
		return sdk.Output{}, err
	}
	svc, ok := in.Services[req["service"]]
	if !ok || svc.ContainerID == "" {
		return sdk.Output{}, fmt.Errorf("service %q is not running in this deployment (is it a predecessor of this step?)", req["service"])
	}
	if in.Deployment.Node == "" {
		return sdk.Output{}, fmt.Errorf("input lacks deployment.node")
	}
	rt, err := docker.New(docker.Config{Node: in.Deployment.Node})
	if err != nil {
		return sdk.Output{}, err
	}
	defer rt.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	info, err := rt.InspectService(ctx, svc.ContainerID)
	if err != nil {
		return sdk.Output{}, fmt.Errorf("%v (is the Docker socket mounted? an admin has to enable docker_socket on this plugin in the catalog, and the node's agent has to run with --docker.pluginsocket)", err)
	}
	if info.Labels[docker.LabelDeployment] != strconv.FormatInt(in.Deployment.ID, 10) || info.Labels[docker.LabelNode] != in.Deployment.Node {
		return sdk.Output{}, fmt.Errorf("container %s does not belong to deployment %d", svc.ContainerID, in.Deployment.ID)
	}
	if !info.Running {
		return sdk.Output{}, fmt.Errorf("service %s is not running (%s)", req["service"], info.Status)
	}
	sdk.Logf("exec in %s: %s", req["service"], strings.Join(cmd, " "))
	code, output, err := rt.Exec(ctx, svc.ContainerID, cmd)
	if err != nil {
		return sdk.Output{}, fmt.Errorf("exec: %w", err)
	}
	if len(output) > 8<<10 {
		output = output[:8<<10]
	}
	if output != "" {
		sdk.Logf("%s", strings.TrimRight(output, "\n"))
	}
	if code != expect {
		return sdk.Output{}, fmt.Errorf("command exited %d, want %d", code, expect)
	}
	return sdk.Output{
		Outputs: map[string]string{"exit_code": strconv.Itoa(code), "output": strings.TrimSpace(output)},
		Message: fmt.Sprintf("%s exited %d", cmd[0], code),
	}, nil
}
