package kube

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/nullops/nullops/agent/runtime"
)

// OneShotSpec, OneShotResult: the runtime's. Network is the deployment's
// namespace; without one the pod still runs there (it has nowhere else to
// be) but labelled LabelIsolated, which the namespace's policies admit
// nowhere: it cannot reach the deployment's services.
type (
	OneShotSpec   = runtime.OneShotSpec
	OneShotResult = runtime.OneShotResult
)

// PluginTmpSize is the size of a plugin pod's writable /tmp (its root
// file system is read-only), as on Docker.
const PluginTmpSize = 64 << 20

// RunOneShot creates the pod, waits for its container to start, attaches
// to it, writes Input on stdin and closes it, streams stdout and stderr to
// the writers until the process exits (deleting the pod after Timeout or
// when ctx ends) and always deletes the pod.
func (r *Runtime) RunOneShot(ctx context.Context, s OneShotSpec) (res OneShotResult, err error) {
	if s.DockerSocket != "" {
		return res, fmt.Errorf("%w: a plugin cannot get the Docker socket on Kubernetes", runtime.ErrUnsupported)
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name := fmt.Sprintf("step-%s-a%d-%s", dnsLabel(s.Step, 40), s.Attempt, hex.EncodeToString(rnd[:]))
	ns := NamespaceName(r.node, s.DeploymentID)
	labels := r.labels(s.DeploymentID, LabelStep, s.Step)
	if s.Network == "" {
		labels[LabelIsolated] = "true"
	}
	var pullSecrets []corev1.LocalObjectReference
	policy := r.pullPolicy(s.Image, s.Auth)
	cctx, cancelCreate := createCtx(ctx)
	defer cancelCreate()
	if hasCredentials(s.Auth) {
		data, err := dockerConfigJSON(s.Image, s.Auth)
		if err != nil {
			return res, err
		}
		sec := pullSecretPfx + name
		if err := r.applySecret(cctx, ns, sec, labels, corev1.SecretTypeDockerConfigJson, data); err != nil {
			return res, err
		}
		defer r.deleteQuietly(ctx, func(dctx context.Context) error {
			return r.cs.CoreV1().Secrets(ns).Delete(dctx, sec, metav1.DeleteOptions{})
		})
		pullSecrets = []corev1.LocalObjectReference{{Name: sec}}
	}
	no, yes := false, true
	grace := int64(0)
	// Past the deadline the kubelet kills the pod even when this agent is
	// gone; it also puts the pod outside the budget's quota (scope
	// NotTerminating).
	deadline := int64(timeout/time.Second) + 60
	tmp := resource.NewQuantity(PluginTmpSize, resource.BinarySI)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			ActiveDeadlineSeconds:         &deadline,
			AutomountServiceAccountToken:  &no,
			EnableServiceLinks:            &no,
			TerminationGracePeriodSeconds: &grace,
			ImagePullSecrets:              pullSecrets,
			Containers: []corev1.Container{{
				Name:            containerName,
				Image:           s.Image,
				ImagePullPolicy: policy,
				Stdin:           true,
				StdinOnce:       true,
				Resources:       requirements(s.Resources),
				VolumeMounts:    []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}},
				// Plugins run locked down, as on Docker: no capabilities, no
				// privilege gain, a read-only root file system.
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: &no,
					ReadOnlyRootFilesystem:   &yes,
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
			Volumes: []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{
				EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: tmp},
			}}},
		},
	}
	if _, err := r.cs.CoreV1().Pods(ns).Create(cctx, pod, metav1.CreateOptions{}); err != nil {
		return res, fmt.Errorf("create pod %s/%s: %w", ns, name, err)
	}
	defer r.deleteQuietly(ctx, func(dctx context.Context) error { return r.deletePod(dctx, ns, name) })

	runCtx, cancelRun := context.WithTimeout(ctx, timeout)
	defer cancelRun()
	timedOut := func() bool { return ctx.Err() == nil && runCtx.Err() != nil }

	st, err := r.waitPodStarted(runCtx, ns, name)
	switch {
	case timedOut():
		res.TimedOut = true
		return res, nil
	case ctx.Err() != nil:
		return res, ctx.Err()
	case err != nil:
		return res, err
	}
	stdout, stderr := s.Stdout, s.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	// stdout is kept until the process ended (the plugin's result, read
	// whole by the executor anyway): when the attach missed it, the pod's
	// log gives it instead (recoverOutput). stderr streams as it comes.
	out := &capped{max: maxOneShotStdout}
	errs := &counting{w: stderr}
	if st.Terminated == nil {
		err = r.attach(runCtx, ns, name, s.Input, out, errs)
		switch {
		case timedOut():
			res.TimedOut = true
			return res, nil
		case ctx.Err() != nil:
			return res, ctx.Err()
		case err != nil:
			// The process may have exited before the attach (a plugin that
			// does not read its input): what it printed is in the log.
			if st2, werr := r.podContainerState(runCtx, ns, name); werr != nil || st2.Terminated == nil {
				return res, fmt.Errorf("attach to %s/%s: %w", ns, name, err)
			}
		}
	}
	// The streams ended: the process exited. Read how.
	for {
		st, err = r.podContainerState(runCtx, ns, name)
		if err == nil && st.Terminated != nil {
			res.ExitCode = int(st.Terminated.ExitCode)
			res.OOMKilled = st.Terminated.Reason == "OOMKilled"
			r.recoverOutput(runCtx, ns, name, out, errs)
			_, _ = stdout.Write(out.Bytes())
			return res, nil
		}
		select {
		case <-runCtx.Done():
			if timedOut() {
				res.TimedOut = true
				return res, nil
			}
			return res, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// maxOneShotStdout bounds the stdout of a plugin kept by RunOneShot (the
// executor takes at most 1 MiB of it).
const maxOneShotStdout = 4 << 20

// attach attaches to the plugin's container, writes input on its stdin and
// closes it, and copies its output until it exits. Tests replace it to
// lose output the way the cluster sometimes does.
func (r *Runtime) attach(ctx context.Context, ns, pod string, input []byte, stdout, stderr io.Writer) error {
	if r.attachHook != nil {
		return r.attachHook(ctx, ns, pod, input, stdout, stderr)
	}
	return r.attachStream(ctx, ns, pod, input, stdout, stderr)
}

func (r *Runtime) attachStream(ctx context.Context, ns, pod string, input []byte, stdout, stderr io.Writer) error {
	return r.stream(ctx, ns, pod, "attach", &corev1.PodAttachOptions{
		Container: containerName, Stdin: true, Stdout: true, Stderr: true,
	}, remotecommand.StreamOptions{Stdin: bytes.NewReader(input), Stdout: stdout, Stderr: stderr})
}

// recoverOutput reads the ended pod's log when the attach did not deliver
// a plugin result (stdout empty or not one JSON object) or delivered no
// stderr: containerd's CRI attach starts copying stdin to the container
// before it adds the attach's stdout and stderr to the container's output,
// so a process that answers its input at once can write before they are
// added (or exit before, and they get nothing), and the attach ends with
// the exit status and none of the output (docs/kubernetes.md). The log has
// all of it, stdout and stderr merged: the result found in it
// (splitResult) is taken as stdout, the rest as stderr when the attach
// delivered no stderr either; with the result delivered and no stderr, the
// log without the result is stderr. A note on stderr says so (the step
// log).
func (r *Runtime) recoverOutput(ctx context.Context, ns, pod string, out *capped, errs *counting) {
	gotResult := oneJSONObject(out.Bytes())
	if gotResult && errs.n > 0 {
		return
	}
	var log capped
	log.max = maxOneShotStdout
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := r.podLogs(lctx, ns, pod, &log); err != nil {
		return
	}
	if gotResult {
		// The result arrived, stderr did not (its stream is added after
		// stdout's): the log without the result is stderr.
		rest := log.Bytes()
		if i := bytes.LastIndex(rest, out.Bytes()); i >= 0 {
			rest = append(append([]byte(nil), rest[:i]...), rest[i+len(out.Bytes()):]...)
		}
		if len(bytes.TrimSpace(rest)) > 0 {
			r.recovered.Add(1)
			_, _ = io.WriteString(errs, RecoveredNote+"\n")
			_, _ = errs.Write(rest)
		}
		return
	}
	rest, result := splitResult(log.Bytes())
	if len(result) == 0 && (errs.n > 0 || len(rest) == 0) {
		return
	}
	r.recovered.Add(1)
	hadStderr := errs.n > 0
	_, _ = io.WriteString(errs, RecoveredNote+"\n")
	if !hadStderr {
		_, _ = errs.Write(rest)
	}
	if len(result) > 0 {
		out.Reset()
		_, _ = out.Write(result)
	}
}

// RecoveredNote is written on a plugin's stderr (its step log) when its
// output was read from its pod's log.
const RecoveredNote = "(nullops: the attach to the plugin's pod lost output; it was read from the pod's log)"

// splitResult finds the plugin's result in a merged log: a JSON object
// that starts a line and ends one — the last such object with an "outputs"
// key, else the only such object — and returns the log without it, and it
// (nil when there is none). containerd copies stdout and stderr to the log
// separately, so their order there is not the order they were written in:
// the result need not be last.
func splitResult(log []byte) (rest, result []byte) {
	type span struct {
		start, end int
		outputs    bool
	}
	var found []span
	for i := 0; i < len(log) && len(found) < 1000; i++ {
		if (i > 0 && log[i-1] != '\n') || log[i] != '{' {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(log[i:]))
		var obj map[string]json.RawMessage
		if err := dec.Decode(&obj); err != nil {
			continue
		}
		end := i + int(dec.InputOffset())
		for end < len(log) && (log[end] == ' ' || log[end] == '\t' || log[end] == '\r') {
			end++
		}
		if end < len(log) && log[end] != '\n' {
			continue
		}
		if end < len(log) {
			end++ // the newline
		}
		_, hasOutputs := obj["outputs"]
		found = append(found, span{i, end, hasOutputs})
	}
	pick := -1
	for k := range found {
		if found[k].outputs {
			pick = k
		}
	}
	if pick < 0 && len(found) == 1 {
		pick = 0
	}
	if pick < 0 {
		return log, nil
	}
	sp := found[pick]
	rest = append(append([]byte(nil), log[:sp.start]...), log[sp.end:]...)
	return rest, log[sp.start:sp.end]
}

// oneJSONObject reports whether b, trimmed, is exactly one JSON object.
func oneJSONObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var v json.RawMessage
	if err := dec.Decode(&v); err != nil {
		return false
	}
	_, err := dec.Token()
	return err == io.EOF
}

// counting passes writes on to w and counts the bytes.
type counting struct {
	mu sync.Mutex
	w  io.Writer
	n  int64
}

func (c *counting) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n += int64(len(p))
	return c.w.Write(p)
}

// deleteQuietly runs a delete on a context of its own (the caller's may be
// cancelled already).
func (r *Runtime) deleteQuietly(ctx context.Context, fn func(context.Context) error) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_ = fn(dctx)
}

func (r *Runtime) deletePod(ctx context.Context, ns, name string) error {
	zero := int64(0)
	err := r.cs.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete pod %s/%s: %w", ns, name, err)
	}
	return nil
}

// podContainerState is the state of the pod's main container (zero while
// it has none).
func (r *Runtime) podContainerState(ctx context.Context, ns, name string) (corev1.ContainerState, error) {
	p, err := r.cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return corev1.ContainerState{}, err
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == containerName {
			return cs.State, nil
		}
	}
	if p.Status.Phase == corev1.PodFailed {
		// Killed before the container ran (activeDeadlineSeconds, eviction).
		return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: -1, Reason: p.Status.Reason, Message: p.Status.Message}}, nil
	}
	return corev1.ContainerState{}, nil
}

// waitPodStarted waits until the pod's container runs or ran; an image
// that cannot be pulled is ErrImagePull.
func (r *Runtime) waitPodStarted(ctx context.Context, ns, name string) (corev1.ContainerState, error) {
	var configSince time.Time
	var pullAuth authRetry
	for {
		p, err := r.cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return corev1.ContainerState{}, fmt.Errorf("pod %s/%s: %w", ns, name, err)
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Name != containerName {
				continue
			}
			switch {
			case cs.State.Running != nil || cs.State.Terminated != nil:
				return cs.State, nil
			case cs.State.Waiting != nil:
				w := cs.State.Waiting.Reason + ": " + cs.State.Waiting.Message
				if isPullFailure(w) {
					if pullAuth.tolerate(w) {
						break
					}
					return cs.State, fmt.Errorf("%s: %w", cs.Image, pullError(pullAuth.reason(w)))
				}
				if isConfigFailure(w) {
					if configSince.IsZero() {
						configSince = time.Now()
					} else if time.Since(configSince) > ConfigErrorGrace {
						return cs.State, errors.New(w)
					}
				}
			}
		}
		if p.Status.Phase == corev1.PodFailed {
			return corev1.ContainerState{}, fmt.Errorf("pod %s/%s failed: %s %s", ns, name, p.Status.Reason, p.Status.Message)
		}
		select {
		case <-ctx.Done():
			return corev1.ContainerState{}, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
