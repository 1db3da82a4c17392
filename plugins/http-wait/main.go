// Command http-wait is a NullOps plugin that waits until a URL (usually a
// service of the deployment, e.g. http://api:8080/healthz) answers with the
// expected status.
//
// Params: url (required), status (default 200), timeout (default 60s),
// interval (default 1s). Outputs: status, elapsed, attempts.
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/nullops/nullops/plugins/sdk"
)

func main() { sdk.Run(run) }

func run(in *sdk.Input) (sdk.Output, error) {
	p, err := in.Required("url")
	if err != nil {
		return sdk.Output{}, err
	}
	want, err := in.IntParam("status", 200)
	if err != nil {
		return sdk.Output{}, err
	}
	timeout, err := in.DurationParam("timeout", 60*time.Second)
	if err != nil {
		return sdk.Output{}, err
	}
	interval, err := in.DurationParam("interval", time.Second)
	if err != nil {
		return sdk.Output{}, err
	}
	return wait(context.Background(), p["url"], want, timeout, interval)
}

func wait(ctx context.Context, url string, want int, timeout, interval time.Duration) (sdk.Output, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	start := time.Now()
	last := ""
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return sdk.Output{}, fmt.Errorf("bad url %q: %v", url, err)
		}
		resp, err := client.Do(req)
		var got string
		if err != nil {
			got = err.Error()
		} else {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			got = "status " + strconv.Itoa(resp.StatusCode)
			if resp.StatusCode == want {
				elapsed := time.Since(start).Round(time.Millisecond)
				return sdk.Output{
					Outputs: map[string]string{"status": strconv.Itoa(resp.StatusCode), "elapsed": elapsed.String(), "attempts": strconv.Itoa(attempt)},
					Message: fmt.Sprintf("%s answered %d after %s", url, resp.StatusCode, elapsed),
				}, nil
			}
		}
		if got != last {
			sdk.Logf("GET %s: %s (want %d)", url, got, want)
			last = got
		}
		select {
		case <-ctx.Done():
			return sdk.Output{}, fmt.Errorf("%s did not answer %d within %s (last: %s)", url, want, timeout, last)
		case <-time.After(interval):
		}
	}
}
