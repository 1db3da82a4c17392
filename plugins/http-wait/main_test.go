package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestWaitUntilExpectedStatus(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	out, err := wait(context.Background(), srv.URL, 204, 10*time.Second, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if out.Outputs["status"] != "204" || out.Outputs["attempts"] != "3" {
		t.Fatalf("outputs %v", out.Outputs)
	}
}

func TestWaitTimesOut(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	_, err := wait(context.Background(), srv.URL, 200, 300*time.Millisecond, 50*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "did not answer 200 within 300ms") || !strings.Contains(err.Error(), "status 500") {
		t.Fatalf("got %v", err)
	}
}
