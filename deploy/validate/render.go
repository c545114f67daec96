// Package validate renders the kustomize overlays of deploy/ with kustomize
// itself, as a library, and checks every object that comes out without a
// cluster: Kubernetes objects are decoded strictly into their k8s.io/api types,
// Dapr objects are validated against the CRD schemas of the Dapr version the
// shop pins, and the rules of rules.go hold the manifests to what the shop
// needs (probes, restricted pods, access control, references that resolve).
package validate

import (
	"encoding/json"
	"fmt"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Object is one rendered object: its identity and its JSON, as kubectl would
// send it to the API server.
type Object struct {
	APIVersion string
	Kind       string
	Name       string
	Namespace  string
	JSON       []byte
}

// String names the object the way kubectl does, for messages.
func (o Object) String() string {
	return o.Kind + "/" + o.Name
}

// Render builds the kustomization in dir, as `kubectl kustomize dir` does, and
// returns its objects in order. It reads only dir and what dir refers to: no
// plugins, no remote bases, nothing from the network.
func Render(dir string) ([]Object, error) {
	opts := krusty.MakeDefaultOptions()
	// Load restrictions stay at their default (RootOnly): an overlay may refer to
	// the base by a relative path, but not to files anywhere on the machine.
	k := krusty.MakeKustomizer(opts)
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	var objs []Object
	for _, r := range rm.Resources() {
		b, err := r.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("kustomize build %s: %s: %w", dir, r.CurId(), err)
		}
		// The identity is read from the JSON, not from kustomize's resource
		// accessors, so that what is checked is exactly what would be applied.
		var id struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(b, &id); err != nil {
			return nil, fmt.Errorf("kustomize build %s: %s: %w", dir, r.CurId(), err)
		}
		objs = append(objs, Object{
			APIVersion: id.APIVersion,
			Kind:       id.Kind,
			Name:       id.Metadata.Name,
			Namespace:  id.Metadata.Namespace,
			JSON:       b,
		})
	}
	return objs, nil
}
