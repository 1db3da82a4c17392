package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/server/auth"
	"github.com/nullops/nullops/server/deploy"
	"github.com/nullops/nullops/server/errs"
)

// sseKeepAlive is how often an idle event stream sends a comment line, so
// proxies keep it open and a vanished client is noticed.
const sseKeepAlive = 15 * time.Second

// sseVisibilityRefresh is how often the "all deployments" stream re-reads
// the caller's grants.
const sseVisibilityRefresh = 30 * time.Second

func startSSE(c echo.Context) error {
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	c.Response().WriteHeader(http.StatusOK)
	c.Response().Flush()
	return nil
}

func writeSSE(c echo.Context, event string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(c.Response(), "event: %s\ndata: %s\n\n", event, b); err != nil {
		return err
	}
	c.Response().Flush()
	return nil
}

// streamEvents writes the subscription as Server-Sent Events until the
// client goes away, the subscription is dropped (the client reconnects) or
// ctx ends; when ctx was ended by guardStream a last "closed" event says
// why.
func streamEvents(c echo.Context, ctx context.Context, sub *deploy.Subscription, tick func() error) error {
	defer sub.Close()
	keep := time.NewTicker(sseKeepAlive)
	defer keep.Stop()
	refresh := time.NewTicker(sseVisibilityRefresh)
	defer refresh.Stop()
	for {
		select {
		case <-ctx.Done():
			if accessEnded(ctx) {
				_ = writeSSE(c, "closed", map[string]string{"reason": "access ended; reconnect to continue"})
			}
			return nil
		case ev, ok := <-sub.C:
			if !ok {
				return nil
			}
			if err := writeSSE(c, ev.Type, ev); err != nil {
				return nil
			}
		case <-keep.C:
			if _, err := fmt.Fprint(c.Response(), ": keep-alive\n\n"); err != nil {
				return nil
			}
			c.Response().Flush()
		case <-refresh.C:
			if tick != nil {
				if err := tick(); err != nil {
					return nil
				}
			}
		}
	}
}

// once reports whether the client asked for the initial event only
// (?once=true: e.g. scripts that want the current state in stream form).
func once(c echo.Context) bool {
	b, _ := strconv.ParseBool(c.QueryParam("once"))
	return b
}

// deploymentEvents: GET /deployments/{id}/events streams the deployment's
// status, step, log, service and TTL changes as Server-Sent Events, after a
// first "deployment" event carrying the full representation (and ends
// there with ?once=true).
func (d *Deps) deploymentEvents(c echo.Context) error {
	dep, err := d.deploymentFor(c, auth.Read)
	if err != nil {
		return err
	}
	sub := d.Deploy.Broker.Subscribe(func(e deploy.Event) bool { return e.DeploymentID == dep.ID })
	v, err := d.deploymentDetail(c, dep)
	if err != nil {
		sub.Close()
		return err
	}
	_ = startSSE(c)
	if err := writeSSE(c, "deployment", v); err != nil || once(c) {
		sub.Close()
		return nil
	}
	ctx, stop := d.guardStream(c, d.stillLevel(dep.ProjectID, dep.EnvironmentID, auth.Read))
	defer stop()
	return streamEvents(c, ctx, sub, nil)
}

// allEvents: GET /events streams the changes of every deployment the caller
// may see (re-checking their grants periodically), after a first "hello"
// event (and ends there with ?once=true).
func (d *Deps) allEvents(c echo.Context) error {
	vis, err := Visible(c)
	if err != nil {
		return err
	}
	type holder struct{ v auth.Visibility }
	cur := &holder{v: vis}
	ch := make(chan auth.Visibility, 1)
	sub := d.Deploy.Broker.Subscribe(func(e deploy.Event) bool {
		select {
		case v := <-ch:
			cur.v = v
		default:
		}
		return cur.v.SeesDeployment(e.ProjectID, e.EnvironmentID)
	})
	_ = startSSE(c)
	if err := writeSSE(c, "hello", map[string]any{"at": time.Now().UTC()}); err != nil || once(c) {
		sub.Close()
		return nil
	}
	ctx, stop := d.guardStream(c, d.stillSees(vis))
	defer stop()
	return streamEvents(c, ctx, sub, func() error {
		v, err := Visible(c)
		if err != nil {
			return err
		}
		select {
		case ch <- v:
		default:
		}
		return nil
	})
}

// serviceLogs: GET /deployments/{id}/logs?service=&tail=&follow= streams a
// service container's logs from the agent as chunked text/plain (or as
// Server-Sent Events "log" when the client asks for text/event-stream).
// The agent's stream is closed when the client goes away, and a followed
// stream also when the caller's access ends (guardStream).
func (d *Deps) serviceLogs(c echo.Context) error {
	dep, err := d.deploymentFor(c, auth.Read)
	if err != nil {
		return err
	}
	v := errs.Fields{}
	service := c.QueryParam("service")
	if service == "" {
		v.Add("service", "is required (the pipeline node id of a service)")
	}
	tail := 100
	if s := c.QueryParam("tail"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 100000 {
			v.Add("tail", "must be a number of lines from 0 (all) to 100000")
		}
		tail = n
	}
	follow := false
	if s := c.QueryParam("follow"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			v.Add("follow", "must be true or false")
		}
		follow = b
	}
	timestamps := queryBool(c, "timestamps", v)
	if err := v.Err(); err != nil {
		return err
	}
	sse := c.Request().Header.Get(echo.HeaderAccept) == "text/event-stream"
	started := false
	start := func() {
		if started {
			return
		}
		started = true
		if sse {
			_ = startSSE(c)
			return
		}
		c.Response().Header().Set(echo.HeaderContentType, "text/plain; charset=utf-8")
		c.Response().Header().Set("X-Content-Type-Options", "nosniff")
		c.Response().WriteHeader(http.StatusOK)
		c.Response().Flush()
	}
	ctx := c.Request().Context()
	if follow {
		var stop context.CancelFunc
		ctx, stop = d.guardStream(c, d.stillLevel(dep.ProjectID, dep.EnvironmentID, auth.Read))
		defer stop()
	}
	err = d.Deploy.Logs(ctx, dep, deploy.LogsRequest{Service: service, Tail: tail, Follow: follow, Timestamps: timestamps}, func(ld protocol.LogsData) error {
		start()
		if sse {
			return writeSSE(c, "log", ld)
		}
		if ld.Error != "" {
			if _, err := fmt.Fprintf(c.Response(), "\n[log stream ended: %s]\n", ld.Error); err != nil {
				return err
			}
		}
		if ld.Data != "" {
			if _, err := c.Response().Write([]byte(ld.Data)); err != nil {
				return err
			}
		}
		c.Response().Flush()
		return nil
	})
	if err != nil && !started {
		return err
	}
	start()
	if accessEnded(ctx) {
		const why = "access ended; reconnect to continue"
		if sse {
			_ = writeSSE(c, "log", protocol.LogsData{EOF: true, Error: why})
		} else {
			_, _ = fmt.Fprintf(c.Response(), "\n[log stream ended: %s]\n", why)
		}
		c.Response().Flush()
	}
	return nil
}
