package kube

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/nullops/nullops/agent/runtime"
	"github.com/nullops/nullops/protocol"
)

// ServiceSpec, ServiceInfo: the runtime's. On Kubernetes, Network is the
// deployment's namespace; ServiceInfo.ID is "namespace/name" of the
// service's Deployment (stable across pod restarts and replacements).
type (
	ServiceSpec = runtime.ServiceSpec
	ServiceInfo = runtime.ServiceInfo
)

// observed is a service's state with what only this package uses.
type observed struct {
	runtime.ServiceInfo
	pod string // the newest pod's name, "" when there is none
	// waiting is why the container does not run (ErrImagePull,
	// CrashLoopBackOff, Unschedulable, ReplicaFailure …) with its message.
	waiting string
}

const (
	containerName = "main"
	envSecretPfx  = "env."
	pullSecretPfx = "pull."
	// ServiceGracePeriod is how long a stopping service pod gets before it
	// is killed (Docker's force-remove kills at once).
	ServiceGracePeriod int64 = 2
	// ServicePidsLimit has no per-pod equivalent in the pod spec (the
	// kubelet's podPidsLimit is node-wide); documented in docs/kubernetes.md.
)

// CheckServiceName says whether a pipeline node id can name a Kubernetes
// Service (an RFC 1035 label: it must start with a letter).
func CheckServiceName(id string) error {
	if errs := validation.IsDNS1035Label(id); len(errs) > 0 {
		return fmt.Errorf("node id %q cannot name a Kubernetes Service: %s", id, strings.Join(errs, "; "))
	}
	return nil
}

// StartService creates (or updates) the service's Secrets, Deployment and
// Service and waits until its pod's container has started (or failed to:
// an image that cannot be pulled is ErrImagePull). It does not wait for
// readiness: that is the health wait's (InspectService's Health).
func (r *Runtime) StartService(ctx context.Context, s ServiceSpec) (ServiceInfo, error) {
	if err := CheckServiceName(s.Service); err != nil {
		return ServiceInfo{}, err
	}
	cctx, cancel := createCtx(ctx)
	defer cancel()
	ns := s.Network
	if ns == "" {
		ns = NamespaceName(r.node, s.DeploymentID)
	}
	labels := r.labels(s.DeploymentID, LabelService, s.Service)
	if err := r.applySecret(cctx, ns, envSecretPfx+s.Service, labels, corev1.SecretTypeOpaque, stringData(s.Env)); err != nil {
		return ServiceInfo{}, err
	}
	var pullSecrets []corev1.LocalObjectReference
	if hasCredentials(s.Auth) {
		data, err := dockerConfigJSON(s.Image, s.Auth)
		if err != nil {
			return ServiceInfo{}, err
		}
		if err := r.applySecret(cctx, ns, pullSecretPfx+s.Service, labels, corev1.SecretTypeDockerConfigJson, data); err != nil {
			return ServiceInfo{}, err
		}
		pullSecrets = []corev1.LocalObjectReference{{Name: pullSecretPfx + s.Service}}
	}
	podLabels := map[string]string{}
	for k, v := range labels {
		podLabels[k] = v
	}
	if s.PublishPort > 0 {
		podLabels[LabelExposed] = "true"
	}
	ports := servicePorts(s)
	var cports []corev1.ContainerPort
	for _, p := range ports {
		cports = append(cports, corev1.ContainerPort{Name: portName(p), ContainerPort: int32(p), Protocol: corev1.ProtocolTCP})
	}
	one := int32(1)
	grace := ServiceGracePeriod
	no := false
	// The registry confirms the credentials at every start, so an image
	// another deployment's credentials pulled onto a node is never handed
	// out without them (the Docker runtime's CheckAccess).
	policy := r.pullPolicy(s.Image, s.Auth)
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: s.Service, Namespace: ns, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{LabelService: s.Service}},
			// One instance at a time, as a Docker container: the old pod
			// goes before a new one starts (and the quota holds one).
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
				Spec: corev1.PodSpec{
					AutomountServiceAccountToken:  &no,
					EnableServiceLinks:            &no,
					TerminationGracePeriodSeconds: &grace,
					ImagePullSecrets:              pullSecrets,
					Containers: []corev1.Container{{
						Name:            containerName,
						Image:           s.Image,
						ImagePullPolicy: policy,
						EnvFrom:         []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: envSecretPfx + s.Service}}}},
						Ports:           cports,
						Resources:       requirements(s.Resources),
						ReadinessProbe:  readinessProbe(s.Health, s.HealthPort),
						SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: &no},
					}},
				},
			},
		},
	}
	if err := r.applyDeployment(cctx, dep); err != nil {
		return ServiceInfo{}, err
	}
	if err := r.applyService(cctx, ns, s, labels, ports); err != nil {
		return ServiceInfo{}, err
	}
	if s.PublishPort > 0 {
		if err := r.allowIngress(cctx, ns, s.DeploymentID, s.PublishPort); err != nil {
			return ServiceInfo{}, err
		}
	}
	o, err := r.waitStarted(ctx, ns+"/"+s.Service)
	return o.ServiceInfo, err
}

// servicePorts are the service's ports, the published one included.
func servicePorts(s ServiceSpec) []int {
	seen := map[int]bool{}
	var out []int
	for _, p := range append(append([]int(nil), s.Ports...), s.PublishPort) {
		if p > 0 && p < 65536 && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	sort.Ints(out)
	return out
}

func portName(p int) string { return "p" + strconv.Itoa(p) }

// requirements are requests equal to limits: the service's share of the
// budget, which the control plane reserved for it.
func requirements(res protocol.Resources) corev1.ResourceRequirements {
	l := corev1.ResourceList{}
	if res.CPU > 0 {
		l[corev1.ResourceCPU] = cpuQuantity(res.CPU)
	}
	if res.MemoryMB > 0 {
		l[corev1.ResourceMemory] = memQuantity(res.MemoryMB)
	}
	if len(l) == 0 {
		return corev1.ResourceRequirements{}
	}
	return corev1.ResourceRequirements{Requests: l, Limits: l.DeepCopy()}
}

// readinessProbe maps a health check: an HTTP GET on the service port or a
// command; its interval becomes the period (default 1 s, as the
// executor's 500 ms poll rounded up to what Kubernetes allows).
func readinessProbe(h *protocol.Health, port int) *corev1.Probe {
	if h == nil || (h.HTTP == "" && len(h.Command) == 0) {
		return nil
	}
	p := &corev1.Probe{PeriodSeconds: 1, TimeoutSeconds: 2, FailureThreshold: 1, SuccessThreshold: 1}
	if d, err := time.ParseDuration(h.Interval); err == nil && d >= time.Second {
		p.PeriodSeconds = int32(d / time.Second)
	}
	switch {
	case h.HTTP != "" && port > 0:
		path := h.HTTP
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		p.HTTPGet = &corev1.HTTPGetAction{Path: path, Port: intstr.FromInt32(int32(port))}
	case len(h.Command) > 0:
		p.Exec = &corev1.ExecAction{Command: append([]string(nil), h.Command...)}
	default:
		return nil
	}
	return p
}

func stringData(env map[string]string) map[string][]byte {
	out := make(map[string][]byte, len(env))
	for k, v := range env {
		out[k] = []byte(v)
	}
	return out
}

func hasCredentials(a *protocol.RegistryAuth) bool {
	return a != nil && (a.Username != "" || a.Password != "")
}

// dockerConfigJSON is the .dockerconfigjson of an imagePullSecret for
// image's registry: the image's host, as the kubelet matches it (the
// catalog's server address may carry a scheme), else auth.ServerAddress.
func dockerConfigJSON(image string, a *protocol.RegistryAuth) (map[string][]byte, error) {
	server := registryHost(image)
	if server == dockerHub && a.ServerAddress != "" {
		server = a.ServerAddress
	}
	type entry struct {
		Username string `json:"username"`
		Password string `json:"password"`
		Auth     string `json:"auth"`
	}
	doc := map[string]map[string]entry{"auths": {server: {
		Username: a.Username, Password: a.Password,
		Auth: base64.StdEncoding.EncodeToString([]byte(a.Username + ":" + a.Password)),
	}}}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode registry credentials: %w", err)
	}
	return map[string][]byte{corev1.DockerConfigJsonKey: b}, nil
}

const dockerHub = "https://index.docker.io/v1/"

// registryHost is the registry part of an image reference (Docker Hub's
// name when it has none).
func registryHost(image string) string {
	first, _, ok := strings.Cut(image, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return first
	}
	return dockerHub
}

func (r *Runtime) applySecret(ctx context.Context, ns, name string, labels map[string]string, typ corev1.SecretType, data map[string][]byte) error {
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels}, Type: typ, Data: data}
	_, err := r.cs.CoreV1().Secrets(ns).Create(ctx, sec, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		_, err = r.cs.CoreV1().Secrets(ns).Update(ctx, sec, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("secret %s/%s: %w", ns, name, err)
	}
	return nil
}

func (r *Runtime) applyDeployment(ctx context.Context, dep *appsv1.Deployment) error {
	c := r.cs.AppsV1().Deployments(dep.Namespace)
	_, err := c.Create(ctx, dep, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		var cur *appsv1.Deployment
		if cur, err = c.Get(ctx, dep.Name, metav1.GetOptions{}); err == nil {
			cur.Labels, cur.Spec = dep.Labels, dep.Spec
			// A new pod even when nothing changed: StartService recreates.
			if cur.Spec.Template.Annotations == nil {
				cur.Spec.Template.Annotations = map[string]string{}
			}
			cur.Spec.Template.Annotations["nullops.restarted-at"] = time.Now().UTC().Format(time.RFC3339Nano)
			_, err = c.Update(ctx, cur, metav1.UpdateOptions{})
		}
	}
	if err != nil {
		return fmt.Errorf("deployment %s/%s: %w", dep.Namespace, dep.Name, err)
	}
	return nil
}

// applyService creates or updates the Service named after the node id:
// ClusterIP with the service's ports (headless when it has none), NodePort
// when one port is published for the ingress.
func (r *Runtime) applyService(ctx context.Context, ns string, s ServiceSpec, labels map[string]string, ports []int) error {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: s.Service, Namespace: ns, Labels: labels},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{LabelService: s.Service},
			Type:     corev1.ServiceTypeClusterIP,
			// As on Docker, the name and the published port reach the
			// service as soon as it runs: its readiness gates the pipeline
			// (the steps after it), not traffic (a health check that needs
			// a request first, or a dependent that connects while it starts,
			// would otherwise never get through).
			PublishNotReadyAddresses: true,
		},
	}
	for _, p := range ports {
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: portName(p), Port: int32(p), TargetPort: intstr.FromInt32(int32(p)), Protocol: corev1.ProtocolTCP})
	}
	if len(ports) == 0 {
		svc.Spec.ClusterIP = corev1.ClusterIPNone
	}
	if s.PublishPort > 0 {
		svc.Spec.Type = corev1.ServiceTypeNodePort
	}
	c := r.cs.CoreV1().Services(ns)
	_, err := c.Create(ctx, svc, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		var cur *corev1.Service
		if cur, err = c.Get(ctx, s.Service, metav1.GetOptions{}); err == nil {
			keep := map[int32]int32{}
			for _, p := range cur.Spec.Ports {
				keep[p.Port] = p.NodePort
			}
			if svc.Spec.Type == corev1.ServiceTypeNodePort {
				for i := range svc.Spec.Ports {
					svc.Spec.Ports[i].NodePort = keep[svc.Spec.Ports[i].Port]
				}
			}
			if (cur.Spec.ClusterIP == corev1.ClusterIPNone) != (svc.Spec.ClusterIP == corev1.ClusterIPNone) {
				// Headless and not cannot be changed in place.
				if err = c.Delete(ctx, s.Service, metav1.DeleteOptions{}); err == nil {
					_, err = c.Create(ctx, svc, metav1.CreateOptions{})
				}
			} else {
				cur.Labels = svc.Labels
				cur.Spec.Ports, cur.Spec.Selector, cur.Spec.Type = svc.Spec.Ports, svc.Spec.Selector, svc.Spec.Type
				cur.Spec.PublishNotReadyAddresses = true
				_, err = c.Update(ctx, cur, metav1.UpdateOptions{})
			}
		}
	}
	if err != nil {
		return fmt.Errorf("service %s/%s: %w", ns, s.Service, err)
	}
	return nil
}

// allowIngress adds port to the policy that admits traffic from outside
// the namespace to exposed pods.
func (r *Runtime) allowIngress(ctx context.Context, ns string, deploymentID int64, port int) error {
	c := r.cs.NetworkingV1().NetworkPolicies(ns)
	pol, err := c.Get(ctx, PolicyIngress, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("network policy %s/%s: %w", ns, PolicyIngress, err)
	}
	p := intstr.FromInt32(int32(port))
	tcp := corev1.ProtocolTCP
	for _, rule := range pol.Spec.Ingress {
		for _, rp := range rule.Ports {
			if rp.Port != nil && *rp.Port == p {
				return nil
			}
		}
	}
	pol.Spec.Ingress = append(pol.Spec.Ingress, networkRule(p, tcp))
	if _, err := c.Update(ctx, pol, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("network policy %s/%s: %w", ns, PolicyIngress, err)
	}
	return nil
}

// removeService deletes a service's Deployment, Service and Secrets.
func (r *Runtime) removeService(ctx context.Context, ns, name string) error {
	bg := metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{PropagationPolicy: &bg}
	var errs []error
	if err := r.cs.AppsV1().Deployments(ns).Delete(ctx, name, opts); err != nil && !apierrors.IsNotFound(err) {
		errs = append(errs, err)
	}
	if err := r.cs.CoreV1().Services(ns).Delete(ctx, name, opts); err != nil && !apierrors.IsNotFound(err) {
		errs = append(errs, err)
	}
	for _, sec := range []string{envSecretPfx + name, pullSecretPfx + name} {
		if err := r.cs.CoreV1().Secrets(ns).Delete(ctx, sec, opts); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("remove service %s/%s: %w", ns, name, errors.Join(errs...))
	}
	return nil
}

func splitID(id string) (ns, name string, ok bool) {
	return strings.Cut(id, "/")
}

// waitStarted waits until the service's newest pod has a container that
// runs or ran, or cannot start (image pull, configuration error).
func (r *Runtime) waitStarted(ctx context.Context, id string) (observed, error) {
	var configSince time.Time
	var pullAuth authRetry
	for {
		o, err := r.inspect(ctx, id)
		if err != nil {
			return o, err
		}
		switch {
		case o.Running || o.RestartCount > 0 || o.Status == "terminated":
			return o, nil
		case isPullFailure(o.waiting):
			if pullAuth.tolerate(o.waiting) {
				break
			}
			return o, pullError(pullAuth.reason(o.waiting))
		case strings.HasPrefix(o.waiting, "ReplicaFailure"):
			return o, errors.New(o.waiting) // e.g. the quota refuses the pod
		case isConfigFailure(o.waiting):
			// The kubelet retries these, and some pass (a Secret its
			// cache has not seen yet): an error only when it lasts.
			if configSince.IsZero() {
				configSince = time.Now()
			} else if time.Since(configSince) > ConfigErrorGrace {
				return o, errors.New(o.waiting)
			}
		default:
			configSince = time.Time{}
		}
		select {
		case <-ctx.Done():
			if o.waiting != "" {
				return o, fmt.Errorf("%s did not start: %s: %w", id, o.waiting, ctx.Err())
			}
			return o, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// pullError classifies the kubelet's pull failure: the registry has no
// such image (or tag), or the pull failed for another reason.
func pullError(waiting string) error {
	low := strings.ToLower(waiting)
	if strings.Contains(low, "not found") || strings.Contains(low, "manifest unknown") || strings.HasPrefix(waiting, "InvalidImageName") {
		return fmt.Errorf("%w: %s", runtime.ErrImageNotFound, waiting)
	}
	return fmt.Errorf("%w: %s", runtime.ErrPull, waiting)
}

func isPullFailure(waiting string) bool {
	for _, r := range []string{"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "RegistryUnavailable"} {
		if strings.HasPrefix(waiting, r) {
			return true
		}
	}
	return false
}

// PullAuthGrace is how long a pull refused by the registry (401/403) is
// waited on before the step fails: the kubelet may pull before its cache
// has the imagePullSecret created just before the pod, and then pulls
// anonymously; its next attempt (after a 10 s back-off) has it. Wrong
// credentials fail after this long instead of at once.
var PullAuthGrace = 30 * time.Second

// authRetry tolerates pull failures for PullAuthGrace after the registry
// first refused the credentials (the back-off that follows says only
// "ImagePullBackOff").
type authRetry struct {
	since time.Time
	first string
}

func (a *authRetry) tolerate(waiting string) bool {
	if a.since.IsZero() {
		low := strings.ToLower(waiting)
		if !strings.Contains(low, "401") && !strings.Contains(low, "403") && !strings.Contains(low, "unauthorized") {
			return false
		}
		a.since, a.first = time.Now(), waiting
	}
	return time.Since(a.since) <= PullAuthGrace
}

// reason is the failure to report: the registry's refusal rather than the
// back-off that followed it.
func (a *authRetry) reason(waiting string) string {
	if a.first != "" {
		return a.first
	}
	return waiting
}

// ConfigErrorGrace is how long a pod may stay in a container
// configuration error before starting it counts as failed.
var ConfigErrorGrace = 30 * time.Second

func isConfigFailure(waiting string) bool {
	for _, r := range []string{"CreateContainerConfigError", "CreateContainerError", "RunContainerError", "ReplicaFailure"} {
		if strings.HasPrefix(waiting, r) {
			return true
		}
	}
	return false
}

// InspectService reads a service's state from its Deployment, Service and
// newest pod.
func (r *Runtime) InspectService(ctx context.Context, id string) (ServiceInfo, error) {
	o, err := r.inspect(ctx, id)
	if o.waiting != "" && !o.Running {
		o.Status += ": " + o.waiting
	}
	return o.ServiceInfo, err
}

func (r *Runtime) inspect(ctx context.Context, id string) (observed, error) {
	ns, name, ok := splitID(id)
	if !ok {
		return observed{}, fmt.Errorf("inspect service %q: not namespace/name: %w", id, runtime.ErrNotFound)
	}
	dep, err := r.cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return observed{}, fmt.Errorf("inspect service %s: %w", id, runtime.ErrNotFound)
	}
	if err != nil {
		return observed{}, fmt.Errorf("inspect service %s: %w", id, err)
	}
	info := observed{ServiceInfo: ServiceInfo{ID: id, Name: id, Labels: dep.Labels, Status: "pending"}}
	for _, c := range dep.Status.Conditions {
		if c.Type == appsv1.DeploymentReplicaFailure && c.Status == corev1.ConditionTrue {
			info.waiting = "ReplicaFailure: " + c.Message
		}
	}
	if svc, err := r.cs.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{}); err == nil && svc.Spec.Type == corev1.ServiceTypeNodePort {
		for _, p := range svc.Spec.Ports {
			if p.NodePort > 0 {
				info.HostPort, info.RouteHost = int(p.NodePort), r.routeHost
				break
			}
		}
	}
	pods, err := r.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: LabelService + "=" + name})
	if err != nil {
		return info, fmt.Errorf("inspect service %s: pods: %w", id, err)
	}
	pod := newestPod(pods.Items)
	if pod == nil {
		return info, nil
	}
	info.pod = pod.Name
	if a, err := netip.ParseAddr(pod.Status.PodIP); err == nil {
		info.IP = a
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason != "" {
			info.waiting = c.Reason + ": " + c.Message
		}
	}
	hasProbe := len(pod.Spec.Containers) > 0 && pod.Spec.Containers[0].ReadinessProbe != nil
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name != containerName {
			continue
		}
		info.RestartCount = int(cs.RestartCount)
		switch {
		case cs.State.Running != nil:
			info.Running, info.Status = true, "running"
		case cs.State.Terminated != nil:
			t := cs.State.Terminated
			info.Status, info.ExitCode, info.OOMKilled, info.FinishedAt = "terminated", int(t.ExitCode), t.Reason == "OOMKilled", t.FinishedAt.Time
		case cs.State.Waiting != nil:
			w := cs.State.Waiting
			info.Status = "waiting"
			if w.Reason != "ContainerCreating" && w.Reason != "PodInitializing" {
				info.waiting = strings.TrimSuffix(w.Reason+": "+w.Message, ": ")
			}
			if info.RestartCount > 0 {
				// Between two runs (CrashLoopBackOff): the kubelet
				// restarts it, as Docker's restart policy does.
				info.Restarting = true
			}
		}
		if info.Status != "terminated" && cs.LastTerminationState.Terminated != nil {
			t := cs.LastTerminationState.Terminated
			info.ExitCode, info.FinishedAt = int(t.ExitCode), t.FinishedAt.Time
			info.OOMKilled = t.Reason == "OOMKilled" && !info.Running
		}
		if hasProbe {
			info.Health = "starting"
			if cs.Ready {
				info.Health = "healthy"
			}
		}
	}
	return info, nil
}

// newestPod is the most recently created pod not being deleted (a
// Recreate rollout leaves the old one terminating for a moment).
func newestPod(pods []corev1.Pod) *corev1.Pod {
	var best *corev1.Pod
	for i := range pods {
		p := &pods[i]
		if p.DeletionTimestamp != nil {
			continue
		}
		if best == nil || p.CreationTimestamp.After(best.CreationTimestamp.Time) ||
			(p.CreationTimestamp.Equal(&best.CreationTimestamp) && p.Name > best.Name) {
			best = p
		}
	}
	return best
}

// StartWorkload has nothing to start: the cluster keeps a service's pod
// running (it is restarting when it is not). A missing service is
// ErrNotFound.
func (r *Runtime) StartWorkload(ctx context.Context, id string) error {
	_, err := r.inspect(ctx, id)
	return err
}
