package kubestate

import (
	"encoding/json"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
)

const (
	partOfLabel = "app.kubernetes.io/part-of"
	partOf      = "gitxds"
)

// toStatus is v (a FleetState or a ReplicaReport) as the map of an
// object's .status: its JSON, with integers as int64 as unstructured
// objects hold them (apimachinery's json.Unmarshal).
func toStatus(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := utiljson.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// fromStatus decodes u's .status into v. Fields v does not know (written
// by a newer gitxds) are ignored.
func fromStatus(u *unstructured.Unstructured, v any) error {
	st, ok, err := unstructured.NestedFieldNoCopy(u.Object, "status")
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("no status")
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("status: %w", err)
	}
	return nil
}
