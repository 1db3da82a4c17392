package docker

import (
	"context"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"github.com/nullops/nullops/agent/runtime"
)

// ContainerExit is one exit of a service container of this node, as the
// Docker daemon announced it.
type ContainerExit = runtime.Exit

// ServiceEvent is a lifecycle event of a service container of this node:
// Action is "die" (Exit is set), "start" or "oom".
type ServiceEvent = runtime.ServiceEvent

// WatchServices streams the start/die/oom events of this node's service
// containers to fn until ctx ends. When the stream breaks it is opened
// again (after retry) with resumed() called first, so the caller can
// re-read what it may have missed.
func (r *Runtime) WatchServices(ctx context.Context, retry time.Duration, resumed func(), fn func(ServiceEvent)) {
	oom := map[string]bool{}
	first := true
	for ctx.Err() == nil {
		f := r.filters(0)
		f.Add("type", "container")
		f.Add("event", "start", "die", "oom")
		res := r.cli.Events(ctx, client.EventsListOptions{Filters: f})
		if !first && resumed != nil {
			resumed()
		}
		first = false
	stream:
		for {
			select {
			case <-ctx.Done():
				return
			case err := <-res.Err:
				_ = err
				break stream
			case m := <-res.Messages:
				ev, ok := serviceEvent(m, oom)
				if ok {
					fn(ev)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
	}
}

// serviceEvent translates a daemon event; oom remembers containers whose
// next "die" is the OOM killer's.
func serviceEvent(m events.Message, oom map[string]bool) (ServiceEvent, bool) {
	a := m.Actor.Attributes
	svc := a[LabelService]
	id, _ := strconv.ParseInt(a[LabelDeployment], 10, 64)
	if svc == "" || id <= 0 || m.Actor.ID == "" {
		return ServiceEvent{}, false
	}
	ev := ServiceEvent{Action: string(m.Action), ID: m.Actor.ID, DeploymentID: id, Service: svc}
	switch m.Action {
	case events.ActionOOM:
		oom[m.Actor.ID] = true
	case events.ActionDie:
		code, _ := strconv.Atoi(a["exitCode"])
		at := time.Now().UTC()
		if m.TimeNano > 0 {
			at = time.Unix(0, m.TimeNano).UTC()
		}
		ev.Exit = &ContainerExit{ID: m.Actor.ID, DeploymentID: id, Service: svc, ExitCode: code, OOMKilled: oom[m.Actor.ID], At: at}
		delete(oom, m.Actor.ID)
	case events.ActionStart:
	default:
		return ServiceEvent{}, false
	}
	return ev, true
}
