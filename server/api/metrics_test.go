package api_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"github.com/nullops/nullops/server/api/apitest"
)

// metricsSeries returns the request-duration series /metrics exposes.
func metricsSeries(t *testing.T, env *apitest.Env) (series []string, size int) {
	t.Helper()
	resp, err := http.Get(env.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, "nullops_http_request_duration_seconds_count{") {
			series = append(series, l[:strings.LastIndexByte(l, '}')+1])
		}
	}
	return series, len(b)
}

// Callers choose methods and paths; the metrics' labels must not follow
// them: unknown methods and unmatched paths collapse into fixed values, so
// /metrics stays the same size however many odd requests arrive.
func TestMetricsLabelsDoNotFollowCallerInput(t *testing.T) {
	env := apitest.New(t)
	rng := rand.New(rand.NewPCG(14, 10))
	const tokenChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-.^_|~"
	word := func(n int) string {
		b := make([]byte, 1+rng.IntN(n))
		for i := range b {
			b[i] = tokenChars[rng.IntN(len(tokenChars))]
		}
		return string(b)
	}
	methods := []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
	prefixes := []string{"/", "/api/v1/", "/api/v1/projects/", "/api/v1/deployments/1/", "/assets/", "/metrics/", "/api/", "/api/v2/"}
	do := func(m, path string) {
		req, err := http.NewRequest(m, env.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", m, path, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	send := func(n int) {
		for range n {
			m := methods[rng.IntN(len(methods))]
			if rng.IntN(2) == 0 {
				m = strings.ToUpper(word(12))
			}
			path := prefixes[rng.IntN(len(prefixes))] + strings.NewReplacer("#", "x", "%", "x").Replace(word(20))
			do(m, path)
		}
	}
	// Every kind of request once, so each fixed label combination exists.
	for _, m := range append(methods, "INVENTED") {
		for _, p := range prefixes {
			for _, suffix := range []string{"abc", "A-b_c", "a.b", "a.js", "x.css", "1"} {
				do(m, p+suffix)
			}
		}
	}
	metricsSeries(t, env)
	before, sizeBefore := metricsSeries(t, env)
	send(1000)
	after, sizeAfter := metricsSeries(t, env)
	t.Logf("/metrics: %d bytes, %d request series before; %d bytes, %d series after 1,000 random requests", sizeBefore, len(before), sizeAfter, len(after))
	// Only the counters' digits may change the size.
	if len(after) != len(before) || sizeAfter > sizeBefore+sizeBefore/100 {
		t.Errorf("/metrics grew from %d series (%d bytes) to %d (%d bytes); new series: %v",
			len(before), sizeBefore, len(after), sizeAfter, fmt.Sprint(newOnes(before, after)))
	}
}

func newOnes(before, after []string) []string {
	seen := map[string]bool{}
	for _, s := range before {
		seen[s] = true
	}
	var out []string
	for _, s := range after {
		if !seen[s] && len(out) < 10 {
			out = append(out, s)
		}
	}
	return out
}
