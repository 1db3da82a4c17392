// Package kubernetes_test checks the install manifest of the agent
// (agent.yaml) against the real test cluster: it applies the manifest and
// acts as the agent's ServiceAccount, so every permission it claims to grant
// and every one it claims to withhold is tried.
package kubernetes_test

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/internal/testutil/kube"
)

// TestAgentManifestPermissions: the agent can create a labelled namespace,
// bind its workload role there and then manage its workloads in it, keep its
// state Secret; it cannot create or delete unlabelled namespaces, bind itself
// anywhere else or to anything else, read Secrets outside its namespaces, or
// reach the kubelet API (nodes/proxy) without the opt-in file.
func TestAgentManifestPermissions(t *testing.T) {
	admin := kube.Client(t)
	cfg := kube.RESTConfig(t)
	ctx := testutil.Context(t, 3*time.Minute)
	in := kube.AgentInstallation(t)
	agentNS, agentSA := in.NS, in.SA
	// Everything but the agent itself (its image and token are not part of
	// this test).
	kube.Apply(t, cfg, in.YAML, func(u *unstructured.Unstructured) bool {
		return u.GetKind() != "Deployment" && u.GetKind() != "Service"
	})
	agent, err := kubernetes.NewForConfig(kube.Impersonate(cfg, agentNS, agentSA))
	if err != nil {
		t.Fatal(err)
	}
	forbidden := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s: allowed, want refused", what)
		} else if !apierrors.IsForbidden(err) && !apierrors.IsInvalid(err) {
			t.Errorf("%s: %v, want Forbidden", what, err)
		}
	}
	allowed := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}

	// Admission policies are in force a moment after they are created: wait
	// (dry runs) until both refuse what they are there to refuse.
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	testutil.WaitFor(t, ctx, 200*time.Millisecond, "the admission policies to be in force", func() bool {
		_, errNS := agent.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "nullops-test-policy-probe"}}, dry)
		_, errRB := agent.RbacV1().RoleBindings("kube-system").Create(ctx, binding("ClusterRole", in.WorkloadRole, agentNS, agentSA), dry)
		return apierrors.IsInvalid(errNS) && apierrors.IsInvalid(errRB)
	})

	// Namespaces: only labelled ones, in both directions.
	_, err = agent.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "nullops-test-unlabelled-"}}, metav1.CreateOptions{})
	forbidden("agent creates an unlabelled namespace", err)
	victim := kube.Namespace(t, admin, "victim") // made by the admin, labelled nullops.io/test only
	forbidden("agent deletes a namespace it did not make", agent.CoreV1().Namespaces().Delete(ctx, victim, metav1.DeleteOptions{}))
	ns, err := agent.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: "nullops-test-agent-rbac-",
		Labels:       map[string]string{"nullops.managed": "true"},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("agent creates a namespace labelled nullops.managed=true: %v", err)
	}
	t.Cleanup(func() { _ = admin.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{}) })
	name := ns.Name

	// Before its RoleBinding the agent has nothing in the namespace.
	_, err = agent.CoreV1().Secrets(name).Create(ctx, secret("s"), metav1.CreateOptions{})
	forbidden("agent creates a Secret before binding its role", err)

	// Bindings: only its workload role, only to itself, only in its namespaces.
	_, err = agent.RbacV1().RoleBindings(name).Create(ctx, binding("ClusterRole", "admin", agentNS, agentSA), metav1.CreateOptions{})
	forbidden("agent binds ClusterRole admin", err)
	_, err = agent.RbacV1().RoleBindings(name).Create(ctx, binding("ClusterRole", in.WorkloadRole, "default", "default"), metav1.CreateOptions{})
	forbidden("agent binds its role to another ServiceAccount", err)
	_, err = agent.RbacV1().RoleBindings("kube-system").Create(ctx, binding("ClusterRole", in.WorkloadRole, agentNS, agentSA), metav1.CreateOptions{})
	forbidden("agent binds its role in kube-system", err)
	_, err = agent.RbacV1().RoleBindings(victim).Create(ctx, binding("ClusterRole", in.WorkloadRole, agentNS, agentSA), metav1.CreateOptions{})
	forbidden("agent binds its role in a namespace it did not make", err)
	_, err = agent.RbacV1().RoleBindings(name).Create(ctx, binding("ClusterRole", in.WorkloadRole, agentNS, agentSA), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("agent binds its workload role to itself in its namespace: %v", err)
	}

	// Now its workloads (RBAC picks up a new binding within about a second).
	testutil.WaitFor(t, ctx, 100*time.Millisecond, "the agent's RoleBinding to take effect", func() bool {
		_, err := agent.CoreV1().Secrets(name).Create(ctx, secret("s"), metav1.CreateOptions{})
		return err == nil
	})
	_, err = agent.CoreV1().Secrets(name).Get(ctx, "s", metav1.GetOptions{})
	allowed("agent reads its Secret", err)
	_, err = agent.AppsV1().Deployments(name).Create(ctx, deployment("web"), metav1.CreateOptions{})
	allowed("agent creates a Deployment", err)
	_, err = agent.CoreV1().Services(name).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{})
	allowed("agent creates a Service", err)
	_, err = agent.CoreV1().ResourceQuotas(name).Create(ctx, &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: "budget"},
		Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("10")}},
	}, metav1.CreateOptions{})
	allowed("agent creates a ResourceQuota", err)
	_, err = agent.NetworkingV1().NetworkPolicies(name).Create(ctx, &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "deny-all-ingress"},
		Spec:       networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}},
	}, metav1.CreateOptions{})
	allowed("agent creates a NetworkPolicy", err)
	_, err = agent.CoreV1().Pods(name).List(ctx, metav1.ListOptions{})
	allowed("agent lists pods in its namespace", err)

	// Cluster-wide it only lists (its own objects by label, capacity).
	_, err = agent.CoreV1().Pods("").List(ctx, metav1.ListOptions{Limit: 1})
	allowed("agent lists pods cluster-wide", err)
	_, err = agent.AppsV1().Deployments("").List(ctx, metav1.ListOptions{LabelSelector: "nullops.managed=true", Limit: 1})
	allowed("agent lists its deployments cluster-wide", err)
	_, err = agent.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	allowed("agent lists nodes", err)
	_, err = agent.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{})
	forbidden("agent lists Secrets in kube-system", err)
	_, err = agent.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
	forbidden("agent lists Secrets cluster-wide", err)
	_, err = agent.CoreV1().Secrets(victim).Create(ctx, secret("s"), metav1.CreateOptions{})
	forbidden("agent creates a Secret in a namespace it did not make", err)
	_, err = agent.AppsV1().Deployments("default").Create(ctx, deployment("web"), metav1.CreateOptions{})
	forbidden("agent creates a Deployment in default", err)
	nodes, err := admin.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil || len(nodes.Items) == 0 {
		t.Fatalf("list nodes: %v", err)
	}
	_, err = agent.CoreV1().RESTClient().Get().Resource("nodes").Name(nodes.Items[0].Name).SubResource("proxy").Suffix("stats/summary").DoRaw(ctx)
	forbidden("agent reads the kubelet API through nodes/proxy", err)

	// Its own state Secret, and nothing else of its namespace's Secrets.
	_, err = agent.CoreV1().Secrets(agentNS).Create(ctx, secret(in.StateSecret), metav1.CreateOptions{})
	allowed("agent creates its state Secret", err)
	st, err := agent.CoreV1().Secrets(agentNS).Get(ctx, in.StateSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("agent reads its state Secret: %v", err)
	}
	st.StringData = map[string]string{"agent.crt": "x"}
	_, err = agent.CoreV1().Secrets(agentNS).Update(ctx, st, metav1.UpdateOptions{})
	allowed("agent updates its state Secret", err)
	t.Cleanup(func() {
		_ = admin.CoreV1().Secrets(agentNS).Delete(context.Background(), in.StateSecret, metav1.DeleteOptions{})
	})
	_, err = admin.CoreV1().Secrets(agentNS).Create(ctx, secret(in.TokenSecret), metav1.CreateOptions{})
	allowed("admin creates the token Secret", err)
	_, err = agent.CoreV1().Secrets(agentNS).Get(ctx, in.TokenSecret, metav1.GetOptions{})
	forbidden("agent reads another Secret of its own namespace", err)

	// And it removes its namespace.
	allowed("agent deletes its namespace", agent.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}))
}

func secret(name string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, StringData: map[string]string{"k": "v"}}
}

func binding(kind, role, saNS, saName string) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "nullops-agent"}, // the name the runtime uses
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: kind, Name: role},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: saName, Namespace: saNS}},
	}
}

func deployment(name string) *appsv1.Deployment {
	replicas := int32(0) // nothing to run: the permission is the point
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nullops-test/none:0"}}},
			},
		},
	}
}
