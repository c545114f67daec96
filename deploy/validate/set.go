package validate

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
)

// Set is one rendered overlay, every object decoded into its type and indexed
// by name (the overlays render into a single namespace).
type Set struct {
	Objects []Object

	Namespaces     map[string]*corev1.Namespace
	Deployments    map[string]*appsv1.Deployment
	Services       map[string]*corev1.Service
	Secrets        map[string]*corev1.Secret
	HPAs           map[string]*autoscalingv2.HorizontalPodAutoscaler
	PDBs           map[string]*policyv1.PodDisruptionBudget
	Components     map[string]*Component
	Configurations map[string]*Configuration
	Resiliencies   map[string]*Resiliency
	Subscriptions  map[string]*Subscription
}

// Check renders the kustomization in dir and validates everything in it: the
// strict decoding of every Kubernetes object, the CRD schema of every Dapr
// object, then, once every object has decoded cleanly, the rules of rules.go
// on the whole set. The error joins every problem found, one per line, each
// naming its object; the Set is returned even then, so that a caller can look
// at what was rendered.
func Check(dir string, schemas *Schemas) (*Set, error) {
	objs, err := Render(dir)
	if err != nil {
		return nil, err
	}
	set, errs := Decode(objs, schemas)
	if len(errs) > 0 {
		// The rules read the decoded objects; one that failed to decode is
		// missing or partial, and every rule about it would blame the wrong
		// thing. As a compiler reports syntax before types: these first.
		return set, errors.Join(errs...)
	}
	return set, errors.Join(set.Rules()...)
}

// Decode decodes objs: Kubernetes kinds strictly into k8s.io/api types, Dapr
// kinds (group dapr.io) against their CRD schema.
func Decode(objs []Object, schemas *Schemas) (*Set, []error) {
	s := &Set{
		Objects:        objs,
		Namespaces:     map[string]*corev1.Namespace{},
		Deployments:    map[string]*appsv1.Deployment{},
		Services:       map[string]*corev1.Service{},
		Secrets:        map[string]*corev1.Secret{},
		HPAs:           map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		PDBs:           map[string]*policyv1.PodDisruptionBudget{},
		Components:     map[string]*Component{},
		Configurations: map[string]*Configuration{},
		Resiliencies:   map[string]*Resiliency{},
		Subscriptions:  map[string]*Subscription{},
	}
	var errs []error
	for _, o := range objs {
		if strings.HasPrefix(o.APIVersion, "dapr.io/") {
			if es := schemas.Validate(o); len(es) > 0 {
				errs = append(errs, es...)
				continue
			}
			if err := s.addDapr(o); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		v, es := decodeKube(o)
		errs = append(errs, es...)
		switch t := v.(type) {
		case *corev1.Namespace:
			s.Namespaces[o.Name] = t
		case *appsv1.Deployment:
			s.Deployments[o.Name] = t
		case *corev1.Service:
			s.Services[o.Name] = t
		case *corev1.Secret:
			s.Secrets[o.Name] = t
		case *autoscalingv2.HorizontalPodAutoscaler:
			s.HPAs[o.Name] = t
		case *policyv1.PodDisruptionBudget:
			s.PDBs[o.Name] = t
		}
	}
	return s, errs
}

func (s *Set) addDapr(o Object) error {
	var into any
	switch o.Kind {
	case "Component":
		c := new(Component)
		s.Components[o.Name], into = c, c
	case "Configuration":
		c := new(Configuration)
		s.Configurations[o.Name], into = c, c
	case "Resiliency":
		r := new(Resiliency)
		s.Resiliencies[o.Name], into = r, r
	case "Subscription":
		sub := new(Subscription)
		s.Subscriptions[o.Name], into = sub, sub
	default:
		// A Dapr kind that passed its schema but that no rule reads (an
		// HTTPEndpoint): nothing more to check.
		return nil
	}
	if err := json.Unmarshal(o.JSON, into); err != nil {
		return fmt.Errorf("%s: %w", o, err)
	}
	return nil
}

// Apps returns the Deployments that run a Dapr app (dapr.io/enabled is
// "true"), by app-id.
func (s *Set) Apps() map[string]*appsv1.Deployment {
	apps := map[string]*appsv1.Deployment{}
	for _, d := range s.Deployments {
		a := d.Spec.Template.Annotations
		if a[annEnabled] == "true" {
			apps[a[annAppID]] = d
		}
	}
	return apps
}
