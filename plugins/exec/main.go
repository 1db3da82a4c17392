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

	"github.com/moby/moby/client"

	"github.com/nullops/nullops/internal/dockerexec"
	"github.com/nullops/nullops/plugins/sdk"
	"github.com/nullops/nullops/protocol"
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
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return sdk.Output{}, fmt.Errorf("docker client: %w", err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ins, err := cli.ContainerInspect(ctx, svc.ContainerID, client.ContainerInspectOptions{})
	if err != nil {
		return sdk.Output{}, fmt.Errorf("inspect container %s: %v (is the Docker socket mounted? an admin has to enable docker_socket on this plugin in the catalog, and the node's agent has to run with --docker.pluginsocket)", svc.ContainerID, err)
	}
	c := ins.Container
	var labels map[string]string
	if c.Config != nil {
		labels = c.Config.Labels
	}
	if labels[protocol.LabelDeployment] != strconv.FormatInt(in.Deployment.ID, 10) || labels[protocol.LabelNode] != in.Deployment.Node {
		return sdk.Output{}, fmt.Errorf("container %s does not belong to deployment %d", svc.ContainerID, in.Deployment.ID)
	}
	if c.State == nil || !c.State.Running {
		status := "unknown state"
		if c.State != nil {
			status = string(c.State.Status)
		}
		return sdk.Output{}, fmt.Errorf("service %s is not running (%s)", req["service"], status)
	}
	sdk.Logf("exec in %s: %s", req["service"], strings.Join(cmd, " "))
	code, output, err := dockerexec.Run(ctx, cli, svc.ContainerID, cmd, 64<<10)
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
