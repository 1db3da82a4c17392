// Command demo-web is the demo/test HTTP service: it reports its environment,
// answers health checks and, when DATABASE_URL is required, refuses to start
// without it. Built FROM scratch for tests and `make demo`.
//
// `/app healthcheck` (for exec-based health checks and the exec plugin, as
// the image has no shell) GETs the running server's /healthz and exits 0
// when it answers 200.
//
// Misbehaviour on demand (tests of crash reporting): EXIT_AFTER=<duration>
// exits with EXIT_CODE (default 1) that long after the start ("0s": before
// listening); ALLOCATE_MB=<n> allocates and touches n MiB after
// ALLOCATE_AFTER (default at once), so a smaller memory limit gets the
// container OOM-killed.
package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

func main() {
	// Everything goes to stdout, in program order: with two streams the
	// log driver may put a stderr line between the pieces of a long
	// stdout line it cuts at 16 KiB (the log-masking tests print one).
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stdout, nil)))
	addr := os.Getenv("LISTEN")
	if addr == "" {
		addr = ":8080"
	}
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		os.Exit(healthcheck(addr))
	}
	// LOG_ON_START (tests of log masking) is printed as one stdout line
	// after LOG_PAD bytes of "x"; EXIT_AFTER_LOG=1 then exits with code 3.
	if line := os.Getenv("LOG_ON_START"); line != "" {
		pad, _ := strconv.Atoi(os.Getenv("LOG_PAD"))
		fmt.Println(strings.Repeat("x", max(0, min(pad, 1<<20))) + line)
		if os.Getenv("EXIT_AFTER_LOG") == "1" {
			os.Exit(3)
		}
	}
	if os.Getenv("REQUIRE_DATABASE_URL") == "1" && os.Getenv("DATABASE_URL") == "" {
		slog.Error("DATABASE_URL is required and not set")
		os.Exit(2)
	}
	misbehave()
	started := time.Now()
	mux := http.NewServeMux()
	// HEALTHY_AFTER_READY=1 keeps /healthz failing until something POSTs
	// /ready (tests hold a deployment in "deploying" for as long as they
	// need).
	var ready atomic.Bool
	ready.Store(os.Getenv("HEALTHY_AFTER_READY") != "1")
	mux.HandleFunc("/ready", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		ready.Store(true)
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if !ready.Load() {
			http.Error(w, "not ready yet", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) {
		env := map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(env)
	})
	// /dial?addr=host:port reports whether this container can open a TCP
	// connection to addr (used to test deployment network isolation).
	mux.HandleFunc("/dial", func(w http.ResponseWriter, r *http.Request) {
		c, err := net.DialTimeout("tcp", r.URL.Query().Get("addr"), 2*time.Second)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		c.Close()
		fmt.Fprintln(w, "connected")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		keys := []string{}
		for _, kv := range os.Environ() {
			k, _, _ := strings.Cut(kv, "=")
			keys = append(keys, k)
		}
		sort.Strings(keys)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		name := os.Getenv("SERVICE_NAME")
		if v := os.Getenv("VERSION"); v != "" {
			name += " (" + v + ")"
		}
		fmt.Fprintf(w, "hello from %s\nhost: %s\nup: %s\nmessage: %s\nenv: %s\n",
			name, r.Host, time.Since(started).Round(time.Second), os.Getenv("MESSAGE"), strings.Join(keys, " "))
	})
	slog.Info("listening", "addr", addr)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		slog.Error("serve", "err", err)
		os.Exit(1)
	}
}

// healthcheck asks the server of this container for /healthz.
func healthcheck(addr string) int {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		return 2
	}
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://127.0.0.1:" + port + "/healthz")
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "healthcheck: status", resp.StatusCode)
		return 1
	}
	fmt.Println("ok", os.Getenv("SERVICE_NAME"))
	return 0
}

// misbehave starts the crashes asked for by EXIT_AFTER and ALLOCATE_MB.
func misbehave() {
	if v := os.Getenv("EXIT_AFTER"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			slog.Error("bad EXIT_AFTER", "err", err)
			os.Exit(2)
		}
		code := 1
		if c, err := strconv.Atoi(os.Getenv("EXIT_CODE")); err == nil {
			code = c
		}
		exit := func() {
			fmt.Fprintf(os.Stderr, "exiting with code %d on purpose (EXIT_AFTER=%s) token=%s\n", code, v, os.Getenv("CRASH_TOKEN"))
			os.Exit(code)
		}
		if d <= 0 {
			exit()
		}
		time.AfterFunc(d, exit)
	}
	if v := os.Getenv("ALLOCATE_MB"); v != "" {
		mb, err := strconv.Atoi(v)
		if err != nil || mb <= 0 {
			slog.Error("bad ALLOCATE_MB", "value", v)
			os.Exit(2)
		}
		after, _ := time.ParseDuration(os.Getenv("ALLOCATE_AFTER"))
		time.AfterFunc(after, func() {
			fmt.Fprintf(os.Stderr, "allocating %d MiB on purpose\n", mb)
			var keep [][]byte
			for i := 0; i < mb; i++ {
				b := make([]byte, 1<<20)
				for j := 0; j < len(b); j += 4096 {
					b[j] = 1
				}
				keep = append(keep, b)
			}
			fmt.Fprintf(os.Stderr, "allocated %d MiB and still alive\n", len(keep))
		})
	}
}
