package kubestate

import (
	"context"
	"fmt"
	"io/fs"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"gitxds.dev/gitxds/deploy/crds"
)

// CustomResourceDefinitions is the API of the CRDs.
var CustomResourceDefinitions = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// CRDs are the CustomResourceDefinitions of deploy/crds (embedded), by
// file name order.
func CRDs() ([]*unstructured.Unstructured, error) {
	names, err := fs.Glob(crds.FS, "*.yaml")
	if err != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	for _, n := range names {
		b, err := fs.ReadFile(crds.FS, n)
		if err != nil {
			return nil, err
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(b, &u.Object); err != nil {
			return nil, fmt.Errorf("deploy/crds/%s: %w", n, err)
		}
		out = append(out, u)
	}
	return out, nil
}

// InstallCRDs applies the CRDs (server-side apply, field manager gitxds,
// taking over fields another manager set) and waits until the API server
// serves them (condition Established), at most timeout.
func InstallCRDs(ctx context.Context, client dynamic.Interface, timeout time.Duration) error {
	objs, err := CRDs()
	if err != nil {
		return err
	}
	res := client.Resource(CustomResourceDefinitions)
	for _, u := range objs {
		if _, err := res.Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: FieldManager, Force: true}); err != nil {
			return fmt.Errorf("install CustomResourceDefinition %s: %w", u.GetName(), err)
		}
	}
	for _, u := range objs {
		name := u.GetName()
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
			cur, err := res.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			conds, _, _ := unstructured.NestedSlice(cur.Object, "status", "conditions")
			for _, c := range conds {
				m, _ := c.(map[string]any)
				if m["type"] == "Established" && m["status"] == "True" {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("CustomResourceDefinition %s not established: %w", name, err)
		}
	}
	return nil
}
