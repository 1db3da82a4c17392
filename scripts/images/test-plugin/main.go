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
package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
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
	if addr := in.Param("dial"); addr != "" {
		c, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err != nil {
			sdk.Fail("dial %s: %v", addr, err)
		}
		c.Close()
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
