package kube

import (
	"context"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/nullops/nullops/agent/runtime"
)

// ServiceEvent is the runtime's; ID is the service's "namespace/name".
type ServiceEvent = runtime.ServiceEvent

// podSeen is what was last seen of a service pod's container.
type podSeen struct {
	started  time.Time // of the running container
	finished time.Time // of the last exit reported
}

// WatchServices streams the start and die events of this node's service
// pods to fn until ctx ends (a pod watch; a die is a container that
// terminated, whether the kubelet restarts it or not, in a pod that is not
// being deleted). When the watch
// breaks it is opened again (after retry) with resumed() called first.
func (r *Runtime) WatchServices(ctx context.Context, retry time.Duration, resumed func(), fn func(ServiceEvent)) {
	seen := map[string]*podSeen{} // by namespace/pod
	first := true
	sel := r.selector(0) + "," + LabelService
	for ctx.Err() == nil {
		list, err := r.cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err == nil {
			if !first && resumed != nil {
				resumed()
			}
			first = false
			for i := range list.Items {
				r.podEvent(&list.Items[i], seen, nil) // the state as it is, silently
			}
			var w watch.Interface
			w, err = r.cs.CoreV1().Pods("").Watch(ctx, metav1.ListOptions{LabelSelector: sel, ResourceVersion: list.ResourceVersion})
			if err == nil {
				r.drain(ctx, w, seen, fn)
				w.Stop()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
	}
}

func (r *Runtime) drain(ctx context.Context, w watch.Interface, seen map[string]*podSeen, fn func(ServiceEvent)) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.ResultChan():
			if !ok {
				return
			}
			pod, isPod := ev.Object.(*corev1.Pod)
			switch {
			case !isPod:
				return // an error status: list and watch again
			case ev.Type == watch.Deleted:
				delete(seen, pod.Namespace+"/"+pod.Name)
			case ev.Type == watch.Added || ev.Type == watch.Modified:
				r.podEvent(pod, seen, fn)
			}
		}
	}
}

// podEvent compares a pod's main container with what was seen of it and
// reports exits and starts to fn (nil: only record).
func (r *Runtime) podEvent(p *corev1.Pod, seen map[string]*podSeen, fn func(ServiceEvent)) {
	svc := p.Labels[LabelService]
	id := labelID(p.Labels)
	if svc == "" || id <= 0 {
		return
	}
	key := p.Namespace + "/" + p.Name
	s := seen[key]
	if s == nil {
		s = &podSeen{}
		seen[key] = s
	}
	if p.DeletionTimestamp != nil {
		// Being deleted (its namespace removed, a Recreate rollout or
		// StartService replacing it): its container's end is no crash of
		// the service, and the service's id ("namespace/service") may
		// already name its successor, whose health wait would take that
		// exit for its own. Recorded, not reported.
		fn = nil
	}
	base := ServiceEvent{ID: p.Namespace + "/" + svc, DeploymentID: id, Service: svc}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name != containerName {
			continue
		}
		var t *corev1.ContainerStateTerminated
		switch {
		case cs.State.Terminated != nil:
			t = cs.State.Terminated
		case cs.LastTerminationState.Terminated != nil:
			t = cs.LastTerminationState.Terminated
		}
		if t != nil && !t.FinishedAt.Time.IsZero() && t.FinishedAt.Time.After(s.finished) {
			s.finished = t.FinishedAt.Time
			if fn != nil {
				ev := base
				ev.Action = runtime.EventExit
				ev.Exit = &runtime.Exit{ID: base.ID, DeploymentID: id, Service: svc,
					ExitCode: int(t.ExitCode), OOMKilled: strings.EqualFold(t.Reason, "OOMKilled"), At: t.FinishedAt.Time.UTC()}
				fn(ev)
			}
		}
		if cs.State.Running != nil && cs.State.Running.StartedAt.Time.After(s.started) {
			s.started = cs.State.Running.StartedAt.Time
			if fn != nil {
				ev := base
				ev.Action = runtime.EventStart
				fn(ev)
			}
		}
	}
}
