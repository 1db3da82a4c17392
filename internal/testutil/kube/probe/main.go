// Command probe is the FROM-scratch image the Kubernetes tests use to check
// pod-to-pod traffic: with no arguments it serves HTTP on :8080 (every path
// answers 200 "ok <hostname>"); `probe get URL [WAIT]` GETs URL, again every
// 200 ms until a 2xx answer or until WAIT (a Go duration, default: one try)
// has passed, and exits 0 on a 2xx answer, 1 otherwise, so a pod's phase
// (Succeeded/Failed) tells whether it could reach URL. The retries cover a
// policy engine that lets a new pod's traffic through only once it has seen
// the pod's address.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	if len(os.Args) >= 3 && os.Args[1] == "get" {
		var wait time.Duration
		if len(os.Args) == 4 {
			var err error
			if wait, err = time.ParseDuration(os.Args[3]); err != nil {
				fmt.Println(err)
				os.Exit(2)
			}
		}
		deadline := time.Now().Add(wait)
		for {
			if get(os.Args[2]) == 0 {
				os.Exit(0)
			}
			if time.Now().After(deadline) {
				os.Exit(1)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	host, _ := os.Hostname()
	srv := &http.Server{
		Addr:              ":8080",
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "ok %s\n", host)
		}),
	}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func get(url string) int {
	c := &http.Client{Timeout: time.Second}
	resp, err := c.Get(url)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	fmt.Printf("%s %s", resp.Status, b)
	if resp.StatusCode/100 != 2 {
		return 1
	}
	return 0
}
