// Command test-plugin is a plugin for tests of the agent's plugin runner;
// params choose its behaviour:
//
//	mode: ok (default) | exit | badjson | sleep | flaky
//	outputs: object copied to the outputs (templated values arrive expanded)
//	stderr: text written to stderr first
//	code: exit code for mode=exit (default 3)
//	sleep: duration for mode=sleep
//	succeed_at: attempt number from which mode=flaky succeeds
//	dial: host:port the plugin must reach before succeeding
//	probe: true adds outputs about its sandbox (root filesystem and /tmp
//	writable, NoNewPrivs, effective capabilities, docker socket present,
//	the cgroup's process limit)
//
// It always outputs secret_names: the names of the secrets it received,
// and earlier_placeholders: the names of the secrets that earlier steps'
// outputs, as it received them, hold as ${secrets.NAME} placeholders.
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nullops/nullops/plugins/sdk"
)

func main() {
	in, err := sdk.ReadInput(os.Stdin)
	if err != nil {
		sdk.Fail("%v", err)
	}
	if s := in.Param("stderr"); s != "" {
		fmt.Fprintln(os.Stderr, s)
	}
	out := sdk.Output{Outputs: map[string]string{}, Message: "test-plugin done"}
	if o, ok := in.Params["outputs"].(map[string]any); ok {
		for k, v := range o {
			out.Outputs[k] = fmt.Sprint(v)
		}
	}
	out.Outputs["attempt"] = strconv.Itoa(in.Attempt)
	out.Outputs["services"] = strconv.Itoa(len(in.Services))
	names := make([]string, 0, len(in.Secrets))
	for k := range in.Secrets {
		names = append(names, k)
	}
	slices.Sort(names)
	out.Outputs["secret_names"] = strings.Join(names, ",")
	var held []string
	for _, o := range in.Outputs {
		for _, v := range o {
			for rest := v; ; {
				_, after, ok := strings.Cut(rest, "${secrets.")
				if !ok {
					break
				}
				name, tail, ok := strings.Cut(after, "}")
				if !ok {
					break
				}
				if !slices.Contains(held, name) {
					held = append(held, name)
				}
				rest = tail
			}
		}
	}
	slices.Sort(held)
	out.Outputs["earlier_placeholders"] = strings.Join(held, ",")
	if in.Param("probe") == "true" {
		probe(out.Outputs)
	}
	if addr := in.Param("dial"); addr != "" {
		// dial_for: keep trying that long (a new pod's traffic may be
		// admitted by the cluster's network plugin only a moment after
		// it starts); one attempt by default.
		within, err := in.DurationParam("dial_for", 0)
		if err != nil {
			sdk.Fail("%v", err)
		}
		deadline := time.Now().Add(within)
		for {
			c, err := net.DialTimeout("tcp", addr, 3*time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				sdk.Fail("dial %s: %v", addr, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		sdk.Logf("reached %s", addr)
	}
	switch in.ParamDefault("mode", "ok") {
	case "exit":
		code, _ := in.IntParam("code", 3)
		fmt.Fprintln(os.Stderr, "failing on purpose")
		os.Exit(code)
	case "badjson":
		fmt.Println("this is not json")
		os.Exit(0)
	case "sleep":
		d, _ := in.DurationParam("sleep", time.Minute)
		sdk.Logf("sleeping %s", d)
		time.Sleep(d)
	case "flaky":
		at, _ := in.IntParam("succeed_at", 2)
		if in.Attempt < at {
			sdk.Fail("transient failure on attempt %d", in.Attempt)
		}
	}
	if err := sdk.WriteOutput(os.Stdout, out); err != nil {
		sdk.Fail("%v", err)
	}
}

// probe reports what the plugin's container allows.
func probe(out map[string]string) {
	writable := func(path string) string {
		if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
			return "false"
		}
		_ = os.Remove(path)
		return "true"
	}
	out["rootfs_writable"] = writable("/probe-write")
	out["tmp_writable"] = writable("/tmp/probe-write")
	_, err := os.Stat("/var/run/docker.sock")
	out["docker_socket"] = strconv.FormatBool(err == nil)
	// cgroup v2 (a private cgroup namespace) or v1's pids controller.
	for _, p := range []string{"/sys/fs/cgroup/pids.max", "/sys/fs/cgroup/pids/pids.max"} {
		if b, err := os.ReadFile(p); err == nil {
			out["pids_max"] = strings.TrimSpace(string(b))
			break
		}
	}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		switch k {
		case "NoNewPrivs":
			out["no_new_privs"] = strings.TrimSpace(v)
		case "CapEff":
			out["cap_eff"] = strings.TrimSpace(v)
		}
	}
}
