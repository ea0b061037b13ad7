package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"kplex.dev/api/crd"
)

// installCRDs creates or updates the VirtualCluster CRD and waits until it
// is established, so the manager's informers find the resource.
func installCRDs(ctx context.Context, cfg *rest.Config, scheme *runtime.Scheme, log *slog.Logger) error {
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("install CRDs: %w", err)
	}
	var want apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(crd.VirtualClusters, &want); err != nil {
		return fmt.Errorf("install CRDs: embedded manifest: %w", err)
	}
	var got apiextensionsv1.CustomResourceDefinition
	err = c.Get(ctx, client.ObjectKey{Name: want.Name}, &got)
	switch {
	case apierrors.IsNotFound(err):
		if err := c.Create(ctx, &want); err != nil {
			return fmt.Errorf("install CRD %s: %w", want.Name, err)
		}
		log.Info("CRD created", "crd", want.Name)
	case err != nil:
		return fmt.Errorf("install CRD %s: %w", want.Name, err)
	default:
		got.Spec = want.Spec
		got.Labels, got.Annotations = want.Labels, want.Annotations
		if err := c.Update(ctx, &got); err != nil {
			return fmt.Errorf("update CRD %s: %w", want.Name, err)
		}
	}
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		var cur apiextensionsv1.CustomResourceDefinition
		if err := c.Get(ctx, client.ObjectKey{Name: want.Name}, &cur); err != nil {
			return false, nil
		}
		for _, cond := range cur.Status.Conditions {
			if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
}
