package validate

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	sigsjson "sigs.k8s.io/json"
)

// kubeTypes maps every built-in apiVersion and kind the manifests may use to
// the k8s.io/api type it decodes into. A kind missing here is an error, not a
// skip: an object nobody checks is how a typo reaches a cluster.
var kubeTypes = map[string]func() any{
	"v1/Namespace":                           func() any { return new(corev1.Namespace) },
	"v1/Service":                             func() any { return new(corev1.Service) },
	"v1/Secret":                              func() any { return new(corev1.Secret) },
	"v1/ConfigMap":                           func() any { return new(corev1.ConfigMap) },
	"v1/ServiceAccount":                      func() any { return new(corev1.ServiceAccount) },
	"apps/v1/Deployment":                     func() any { return new(appsv1.Deployment) },
	"autoscaling/v2/HorizontalPodAutoscaler": func() any { return new(autoscalingv2.HorizontalPodAutoscaler) },
	"policy/v1/PodDisruptionBudget":          func() any { return new(policyv1.PodDisruptionBudget) },
	"networking.k8s.io/v1/NetworkPolicy":     func() any { return new(networkingv1.NetworkPolicy) },
	"networking.k8s.io/v1/Ingress":           func() any { return new(networkingv1.Ingress) },
	"networking.k8s.io/v1/IngressClass":      func() any { return new(networkingv1.IngressClass) },
}

// decodeKube decodes o into its k8s.io/api type the way the API server does
// with strict field validation (kubectl apply --validate=strict, the default):
// an unknown or duplicated field is an error, and field names are matched
// case-sensitively, so "containerport" is as wrong as "replica". encoding/json
// would match either case and let the first one through.
func decodeKube(o Object) (any, []error) {
	newT, ok := kubeTypes[o.APIVersion+"/"+o.Kind]
	if !ok {
		return nil, []error{fmt.Errorf("%s: no schema for %s %s: add its k8s.io/api type to kubeTypes", o, o.APIVersion, o.Kind)}
	}
	v := newT()
	strict, err := sigsjson.UnmarshalStrict(o.JSON, v, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
	if err != nil {
		// A type mismatch (a string where an integer belongs, "50mm" as a
		// quantity) stops the decoder; it is reported like the field errors.
		return nil, []error{fmt.Errorf("%s: %w", o, err)}
	}
	var errs []error
	for _, e := range strict {
		errs = append(errs, fmt.Errorf("%s: %w", o, e))
	}
	return v, errs
}
