package kube

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// Applied is one object Apply created or updated.
type Applied struct {
	Object   *unstructured.Unstructured
	Resource dynamic.ResourceInterface
}

// Apply server-side-applies every object of the multi-document YAML
// manifest for which keep returns true (nil keeps all; keep may also change
// the object, e.g. an image), in order, as cluster-admin. The objects are
// deleted in reverse order when the test ends, and the cleanup waits (up to
// two minutes) until deleted namespaces are gone, so the next test can apply
// the same manifest.
func Apply(t testing.TB, cfg *rest.Config, manifest []byte, keep func(*unstructured.Unstructured) bool) []Applied {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	groups, err := restmapper.GetAPIGroupResources(dc)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	mapper := restmapper.NewDiscoveryRESTMapper(groups)
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var applied []Applied
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var namespaces []Applied
		for i := len(applied) - 1; i >= 0; i-- {
			a := applied[i]
			err := a.Resource.Delete(ctx, a.Object.GetName(), metav1.DeleteOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("delete %s %s: %v", a.Object.GetKind(), a.Object.GetName(), err)
			}
			if a.Object.GetKind() == "Namespace" && a.Object.GetAPIVersion() == "v1" {
				namespaces = append(namespaces, a)
			}
		}
		wctx, wcancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer wcancel()
		for _, a := range namespaces {
			for {
				_, err := a.Resource.Get(wctx, a.Object.GetName(), metav1.GetOptions{})
				if apierrors.IsNotFound(err) {
					break
				}
				if wctx.Err() != nil {
					t.Errorf("namespace %s still there 2 minutes after its deletion", a.Object.GetName())
					break
				}
				time.Sleep(250 * time.Millisecond)
			}
		}
	})
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifest), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("decode manifest: %v", err)
		}
		if len(u.Object) == 0 || (keep != nil && !keep(u)) {
			continue
		}
		gvk := u.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatalf("%s: %v", gvk, err)
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			ri = dyn.Resource(m.Resource).Namespace(u.GetNamespace())
		}
		data, err := u.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		force := true
		got, err := ri.Patch(ctx, u.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: "nullops-test", Force: &force})
		if err != nil {
			t.Fatalf("apply %s %s/%s: %v", gvk.Kind, u.GetNamespace(), u.GetName(), err)
		}
		applied = append(applied, Applied{Object: got, Resource: ri})
	}
	return applied
}

// Impersonate returns a copy of cfg that acts as the ServiceAccount ns/name
// (the admin may impersonate anyone): what that account's RBAC allows, and
// what admission policies matching it let through.
func Impersonate(cfg *rest.Config, ns, name string) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + ns + ":" + name,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
	}
	return c
}
