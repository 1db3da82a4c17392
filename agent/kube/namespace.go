package kube

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	netv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/nullops/nullops/agent/runtime"
	"github.com/nullops/nullops/protocol"
)

// Object kinds (Object.Kind).
const (
	KindNamespace = "namespace"
	// KindWorkload is a service's Deployment (the unit the executor
	// inspects, reads logs and stats of, like a Docker service container)
	// or a plugin step's pod.
	KindWorkload = runtime.KindWorkload
)

// Names of the fixed objects of a deployment's namespace.
const (
	QuotaName     = "budget"
	PolicyDenyAll = "deny-all-ingress"
	PolicySameNS  = "allow-same-namespace"
	PolicyIngress = "allow-ingress"
	LabelExposed  = "nullops.exposed" // "true" on pods of services published for the ingress
	// LabelIsolated is "true" on plugin pods that do not join the
	// deployment's network (OneShotSpec.Network ""): the namespace's
	// policies admit nothing from them.
	LabelIsolated = "nullops.isolated"
)

// Network is the runtime's: on Kubernetes a deployment's namespace.
type Network = runtime.Network

// EnsureNetwork is EnsureNamespace (runtime.Workloads).
func (r *Runtime) EnsureNetwork(ctx context.Context, spec runtime.NetworkSpec) (Network, error) {
	return r.EnsureNamespace(ctx, spec.DeploymentID, spec.Resources)
}

// EnsureNamespace returns deployment id's namespace, creating it with its
// ResourceQuota (budget; figures of 0 are not limited) and NetworkPolicy
// set when it does not exist. It returns once the quota is in force (the
// API server refuses pods in a namespace whose quota it has not computed
// yet).
func (r *Runtime) EnsureNamespace(ctx context.Context, deploymentID int64, budget protocol.Resources) (Network, error) {
	name := NamespaceName(r.node, deploymentID)
	cctx, cancel := createCtx(ctx)
	defer cancel()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: r.labels(deploymentID)}}
	if _, err := r.cs.CoreV1().Namespaces().Create(cctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return Network{}, fmt.Errorf("create namespace %s: %w", name, err)
	}
	if got, err := r.cs.CoreV1().Namespaces().Get(cctx, name, metav1.GetOptions{}); err == nil && got.DeletionTimestamp != nil {
		return Network{}, fmt.Errorf("namespace %s is being deleted", name)
	}
	if err := r.bindWorkloadRole(cctx, name, deploymentID); err != nil {
		return Network{}, err
	}
	for _, p := range r.policies(deploymentID) {
		err := retryForbidden(cctx, func() error {
			_, err := r.cs.NetworkingV1().NetworkPolicies(name).Create(cctx, p, metav1.CreateOptions{})
			return err
		})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return Network{}, fmt.Errorf("create network policy %s/%s: %w", name, p.Name, err)
		}
	}
	hard := quotaHard(budget)
	if len(hard) == 0 {
		return Network{ID: name, Name: name}, nil
	}
	q := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: QuotaName, Labels: r.labels(deploymentID)},
		Spec: corev1.ResourceQuotaSpec{
			Hard: hard,
			// Service pods only: plugin pods carry activeDeadlineSeconds
			// (scope Terminating) and have their own limits outside the
			// budget, as on Docker.
			Scopes: []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeNotTerminating},
		},
	}
	err := retryForbidden(cctx, func() error {
		_, err := r.cs.CoreV1().ResourceQuotas(name).Create(cctx, q, metav1.CreateOptions{})
		return err
	})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return Network{}, fmt.Errorf("create resource quota %s: %w", name, err)
	}
	for {
		got, err := r.cs.CoreV1().ResourceQuotas(name).Get(ctx, QuotaName, metav1.GetOptions{})
		if err == nil && len(got.Status.Hard) > 0 {
			return Network{ID: name, Name: name}, nil
		}
		select {
		case <-ctx.Done():
			return Network{}, fmt.Errorf("resource quota of %s not in force: %w", name, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// RoleBindingName is the RoleBinding of WorkloadRole in a deployment
// namespace.
const RoleBindingName = "nullops-agent"

// bindWorkloadRole grants the agent's ServiceAccount WorkloadRole in the
// namespace (when configured).
func (r *Runtime) bindWorkloadRole(ctx context.Context, ns string, deploymentID int64) error {
	if r.workloadRole == "" {
		return nil
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: RoleBindingName, Labels: r.labels(deploymentID)},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: r.workloadRole},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: r.saNamespace, Name: r.saName}},
	}
	if _, err := r.cs.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("bind %s in %s: %w", r.workloadRole, ns, err)
	}
	return nil
}

// retryForbidden retries fn while the API server answers 403 for up to
// 10 s: a RoleBinding just created takes a moment to be in force.
func retryForbidden(ctx context.Context, fn func() error) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := fn()
		if !apierrors.IsForbidden(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// quotaHard is the budget as quota figures: requests and limits alike
// (service pods get requests equal to their limits).
func quotaHard(b protocol.Resources) corev1.ResourceList {
	l := corev1.ResourceList{}
	if b.CPU > 0 {
		q := cpuQuantity(b.CPU)
		l[corev1.ResourceRequestsCPU], l[corev1.ResourceLimitsCPU] = q, q
	}
	if b.MemoryMB > 0 {
		q := memQuantity(b.MemoryMB)
		l[corev1.ResourceRequestsMemory], l[corev1.ResourceLimitsMemory] = q, q
	}
	return l
}

func cpuQuantity(cpu float64) resource.Quantity {
	m := int64(cpu*1000 + 0.5)
	if m < 1 {
		m = 1
	}
	return *resource.NewMilliQuantity(m, resource.DecimalSI)
}

func memQuantity(mb int64) resource.Quantity {
	return *resource.NewQuantity(mb<<20, resource.BinarySI)
}

// policies is the NetworkPolicy set of a deployment namespace: nothing
// comes in but from pods of the same namespace, and to the published port
// of an exposed service (the ingress reaches it through its NodePort).
// Egress is not restricted (as on Docker).
func (r *Runtime) policies(deploymentID int64) []*netv1.NetworkPolicy {
	ingress := []netv1.PolicyType{netv1.PolicyTypeIngress}
	return []*netv1.NetworkPolicy{
		{
			ObjectMeta: metav1.ObjectMeta{Name: PolicyDenyAll, Labels: r.labels(deploymentID)},
			Spec:       netv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{}, PolicyTypes: ingress},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: PolicySameNS, Labels: r.labels(deploymentID)},
			Spec: netv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{}, PolicyTypes: ingress,
				Ingress: []netv1.NetworkPolicyIngressRule{{From: []netv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{
					MatchExpressions: []metav1.LabelSelectorRequirement{{Key: LabelIsolated, Operator: metav1.LabelSelectorOpDoesNotExist}},
				}}}}},
			},
		},
		{
			// The port itself is set per service (ingressPolicy) when a
			// service is published; this one admits nothing until then.
			ObjectMeta: metav1.ObjectMeta{Name: PolicyIngress, Labels: r.labels(deploymentID)},
			Spec: netv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{LabelExposed: "true"}},
				PolicyTypes: ingress,
			},
		},
	}
}

// networkRule admits TCP traffic to port from anywhere (the ingress
// reaches a published service through its NodePort, from an address the
// agent does not know).
func networkRule(port intstr.IntOrString, proto corev1.Protocol) netv1.NetworkPolicyIngressRule {
	return netv1.NetworkPolicyIngressRule{Ports: []netv1.NetworkPolicyPort{{Protocol: &proto, Port: &port}}}
}

// Object is the runtime's.
type Object = runtime.Object

// ListManaged lists this node's deployment namespaces and their services;
// with deploymentID > 0 only those of that deployment.
func (r *Runtime) ListManaged(ctx context.Context, deploymentID int64) ([]Object, error) {
	return r.list(ctx, r.selector(deploymentID), nil)
}

// Predecessors lists the namespaces labelled with node uid that another
// agent instance made (their nullops.node label is not this runtime's).
func (r *Runtime) Predecessors(ctx context.Context, uid string) ([]Object, error) {
	sel := LabelManaged + "=true," + LabelNodeUID + "=" + labelValue(uid) + "," + LabelNode + "!=" + r.nodeLabel
	return r.list(ctx, sel, func(o Object) bool { return o.Kind == KindNamespace })
}

// ListAll lists every namespace labelled nullops.managed=true, whichever
// agent made it; with uid != "" only those of that node.
func (r *Runtime) ListAll(ctx context.Context, uid string) ([]Object, error) {
	sel := LabelManaged + "=true"
	if uid != "" {
		sel += "," + LabelNodeUID + "=" + labelValue(uid)
	}
	return r.list(ctx, sel, func(o Object) bool { return o.Kind == KindNamespace })
}

func (r *Runtime) list(ctx context.Context, sel string, keep func(Object) bool) ([]Object, error) {
	if keep == nil {
		keep = func(Object) bool { return true }
	}
	nss, err := r.cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	var out []Object
	for _, ns := range nss.Items {
		o := Object{Kind: KindNamespace, ID: ns.Name, Name: ns.Name, DeploymentID: labelID(ns.Labels), State: string(ns.Status.Phase)}
		if keep(o) {
			out = append(out, o)
		}
	}
	deps, err := r.cs.AppsV1().Deployments("").List(ctx, metav1.ListOptions{LabelSelector: sel + "," + LabelService})
	if err != nil {
		return nil, fmt.Errorf("list deployments: %w", err)
	}
	for _, d := range deps.Items {
		o := serviceObject(&d)
		if keep(o) {
			out = append(out, o)
		}
	}
	return out, nil
}

func serviceObject(d *appsv1.Deployment) Object {
	o := Object{
		Kind: KindWorkload, ID: d.Namespace + "/" + d.Name, Name: d.Namespace + "/" + d.Name,
		DeploymentID: labelID(d.Labels), Service: d.Labels[LabelService], State: "starting",
	}
	// A service's pods are the cluster's to keep running: one that is
	// not available is being (re)started.
	if d.Status.AvailableReplicas > 0 {
		o.Running, o.State = true, "running"
	} else {
		o.Restarting = true
	}
	return o
}

func labelID(l map[string]string) int64 {
	id, _ := strconv.ParseInt(l[LabelDeployment], 10, 64)
	return id
}

// Remove deletes objs (namespaces: with everything in them, waiting until
// they are gone; services: their Deployment, Service and env Secret) and
// returns the names it removed and the errors it met (it keeps going).
func (r *Runtime) Remove(ctx context.Context, objs []Object) ([]string, error) {
	var removed []string
	var errs []error
	going := map[string]bool{}
	for _, o := range objs {
		if o.Kind == KindNamespace {
			going[o.Name] = true
		}
	}
	for _, o := range objs {
		if o.Kind != KindWorkload {
			continue
		}
		if ns, _, _ := splitID(o.ID); going[ns] {
			removed = append(removed, o.Name) // goes with its namespace
			continue
		}
		ns, name, _ := splitID(o.ID)
		if err := r.removeService(ctx, ns, name); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, o.Name)
	}
	var gone []string
	for _, o := range objs {
		if o.Kind != KindNamespace {
			continue
		}
		if err := r.deleteNamespace(ctx, o.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		gone = append(gone, o.Name)
	}
	for _, name := range gone {
		if err := r.waitNamespaceGone(ctx, name); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, name)
	}
	return removed, errors.Join(errs...)
}

// RemoveDeployment deletes deployment id's namespace (with every object in
// it) and waits until it is gone.
func (r *Runtime) RemoveDeployment(ctx context.Context, deploymentID int64) ([]string, error) {
	if deploymentID <= 0 {
		return nil, fmt.Errorf("remove deployment: invalid id %d", deploymentID)
	}
	objs, err := r.ListManaged(ctx, deploymentID)
	if err != nil {
		return nil, err
	}
	var nss []Object
	for _, o := range objs {
		if o.Kind == KindNamespace {
			nss = append(nss, o)
		}
	}
	// The namespace of a deployment whose labels were lost is still found
	// by its name.
	if len(nss) == 0 {
		name := NamespaceName(r.node, deploymentID)
		if _, err := r.cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{}); err == nil {
			nss = append(nss, Object{Kind: KindNamespace, ID: name, Name: name, DeploymentID: deploymentID})
		} else if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("get namespace %s: %w", name, err)
		}
	}
	return r.Remove(ctx, nss)
}

// Uninstall removes every namespace ListAll(uid) lists and returns their
// names.
func (r *Runtime) Uninstall(ctx context.Context, uid string) ([]string, error) {
	objs, err := r.ListAll(ctx, uid)
	if err != nil {
		return nil, err
	}
	return r.Remove(ctx, objs)
}

func (r *Runtime) deleteNamespace(ctx context.Context, name string) error {
	// The namespace controller removes the contents first (pods get their
	// own short grace period), then the namespace.
	err := r.cs.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete namespace %s: %w", name, err)
	}
	return nil
}

// NamespaceDeleteTimeout bounds the wait for a deleted namespace to be
// gone (its pods' grace periods are seconds; see podSpec).
var NamespaceDeleteTimeout = 5 * time.Minute

// waitNamespaceGone polls until the namespace no longer exists.
func (r *Runtime) waitNamespaceGone(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, NamespaceDeleteTimeout)
	defer cancel()
	for {
		_, err := r.cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("namespace %s not gone: %w", name, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}
