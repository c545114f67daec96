package validate

import (
	"fmt"
	"net"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
)

// The pod annotations through which Dapr's sidecar injector configures daprd.
const (
	annEnabled           = "dapr.io/enabled"
	annAppID             = "dapr.io/app-id"
	annAppPort           = "dapr.io/app-port"
	annConfig            = "dapr.io/config"
	annHealthCheck       = "dapr.io/enable-app-health-check"
	annHealthCheckPath   = "dapr.io/app-health-check-path"
	annLogAsJSON         = "dapr.io/log-as-json"
	annSidecarCPURequest = "dapr.io/sidecar-cpu-request"
	annSidecarCPULimit   = "dapr.io/sidecar-cpu-limit"
	annSidecarMemRequest = "dapr.io/sidecar-memory-request"
	annSidecarMemLimit   = "dapr.io/sidecar-memory-limit"
)

// RequiredDaprAnnotations must be on the pod template of every Dapr app.
var RequiredDaprAnnotations = []string{
	annEnabled, annAppID, annAppPort, annConfig, annHealthCheck, annHealthCheckPath,
	annLogAsJSON, annSidecarCPURequest, annSidecarCPULimit, annSidecarMemRequest, annSidecarMemLimit,
}

// secretLike matches component metadata names that hold a credential; such a
// value must come from a secret, never be written inline.
var secretLike = regexp.MustCompile(`(?i)(password|secret|token|accesskey|connectionstring|credentials)`)

// Rules checks what no schema can: that the objects fit together (every
// reference resolves), that every pod runs restricted with probes and
// resources, and that the Dapr resources say what the shop means.
func (s *Set) Rules() []error {
	var errs []error
	errs = append(errs, s.namespaceRules()...)
	apps := s.Apps()
	for _, d := range sortedValues(s.Deployments) {
		errs = append(errs, deploymentRules(d)...)
		if d.Spec.Template.Annotations[annEnabled] == "true" {
			errs = append(errs, s.daprAppRules(d)...)
		}
	}
	errs = append(errs, s.serviceRules()...)
	errs = append(errs, s.hpaRules()...)
	errs = append(errs, s.pdbRules()...)
	errs = append(errs, s.componentRules(apps)...)
	errs = append(errs, s.configurationRules(apps)...)
	errs = append(errs, s.resiliencyRules(apps)...)
	errs = append(errs, s.subscriptionRules(apps)...)
	return errs
}

func (s *Set) namespaceRules() []error {
	var errs []error
	for _, o := range s.Objects {
		if o.Kind == "Namespace" {
			continue
		}
		if o.Namespace == "" {
			errs = append(errs, fmt.Errorf("%s: no namespace: Dapr finds components and configurations in the app's namespace, so every object needs one", o))
			continue
		}
		if _, ok := s.Namespaces[o.Namespace]; !ok {
			errs = append(errs, fmt.Errorf("%s: namespace %q is not created by this overlay", o, o.Namespace))
		}
		for _, msg := range utilvalidation.IsDNS1123Subdomain(o.Name) {
			errs = append(errs, fmt.Errorf("%s: name: %s", o, msg))
		}
	}
	return errs
}

// deploymentRules hold for every Deployment, Dapr app or not.
func deploymentRules(d *appsv1.Deployment) []error {
	var errs []error
	fail := reporter(&errs, "Deployment", d.Name)
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	switch {
	case err != nil:
		fail("selector: %v", err)
	case sel.Empty():
		fail("empty selector")
	case !sel.Matches(labels.Set(d.Spec.Template.Labels)):
		fail("selector %s does not match the pod template's labels %v", sel, d.Spec.Template.Labels)
	}
	pod := d.Spec.Template.Spec
	if len(pod.Containers) == 0 {
		fail("no containers")
	}
	for _, c := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
		errs = append(errs, containerRules(d.Name, pod, c)...)
	}
	return errs
}

func containerRules(deployment string, pod corev1.PodSpec, c corev1.Container) []error {
	var errs []error
	fail := reporter(&errs, "Deployment", deployment+": container "+c.Name)
	// An image without a tag or with :latest is a different image on every
	// pull; one with a digest is pinned.
	if !strings.Contains(c.Image, "@") {
		i := strings.LastIndex(c.Image, ":")
		if i < 0 || strings.Contains(c.Image[i:], "/") {
			fail("image %q has no tag", c.Image)
		} else if c.Image[i+1:] == "latest" {
			fail("image %q is :latest", c.Image)
		}
	}

	// The restricted Pod Security Standard, container by container, with pod
	// settings applying where the container sets nothing.
	sc := c.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	psc := pod.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	runAsNonRoot := sc.RunAsNonRoot
	if runAsNonRoot == nil {
		runAsNonRoot = psc.RunAsNonRoot
	}
	if runAsNonRoot == nil || !*runAsNonRoot {
		fail("runAsNonRoot is not true")
	}
	runAsUser := sc.RunAsUser
	if runAsUser == nil {
		runAsUser = psc.RunAsUser
	}
	if runAsUser != nil && *runAsUser == 0 {
		fail("runAsUser is 0 (root)")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		fail("allowPrivilegeEscalation is not false")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		fail("readOnlyRootFilesystem is not true")
	}
	if sc.Privileged != nil && *sc.Privileged {
		fail("privileged")
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		fail("capabilities do not drop ALL")
	} else if len(sc.Capabilities.Add) > 0 {
		fail("capabilities add %v", sc.Capabilities.Add)
	}
	seccomp := sc.SeccompProfile
	if seccomp == nil {
		seccomp = psc.SeccompProfile
	}
	if seccomp == nil || (seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault && seccomp.Type != corev1.SeccompProfileTypeLocalhost) {
		fail("seccompProfile is not RuntimeDefault (or Localhost), on the container or the pod")
	}

	// Requests so that the scheduler places the pod honestly, limits so that
	// one pod cannot starve its node.
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := c.Resources.Requests[name]
		lim, hasLim := c.Resources.Limits[name]
		if !hasReq {
			fail("no %s request", name)
		}
		if !hasLim {
			fail("no %s limit", name)
		}
		if hasReq && hasLim && req.Cmp(lim) > 0 {
			fail("%s request %s is above its limit %s", name, req.String(), lim.String())
		}
	}
	if c.LivenessProbe == nil {
		fail("no liveness probe")
	}
	if c.ReadinessProbe == nil {
		fail("no readiness probe")
	}
	for _, p := range []struct {
		kind  string
		probe *corev1.Probe
	}{{"liveness", c.LivenessProbe}, {"readiness", c.ReadinessProbe}, {"startup", c.StartupProbe}} {
		if p.probe == nil {
			continue
		}
		port, ok := probePort(p.probe)
		if !ok {
			fail("%s probe has no httpGet, tcpSocket or grpc port", p.kind)
			continue
		}
		if _, err := resolvePort(c, port); err != nil {
			fail("%s probe: %v", p.kind, err)
		}
	}
	return errs
}

// daprAppRules hold for every Deployment whose pods get a Dapr sidecar.
func (s *Set) daprAppRules(d *appsv1.Deployment) []error {
	var errs []error
	fail := reporter(&errs, "Deployment", d.Name)
	ann := d.Spec.Template.Annotations
	for _, k := range RequiredDaprAnnotations {
		if ann[k] == "" {
			fail("pod template has no %s annotation", k)
		}
	}
	appID := ann[annAppID]
	if appID != "" {
		// daprd refuses an app-id with a dot; the rest of DNS-1123 keeps it
		// usable as the name of the <app-id>-dapr Service the injector creates.
		for _, msg := range utilvalidation.IsDNS1123Label(appID) {
			fail("%s %q: %s", annAppID, appID, msg)
		}
	}
	for _, k := range []string{annHealthCheck, annLogAsJSON, annEnabled} {
		if v := ann[k]; v != "" && v != "true" && v != "false" {
			fail("%s is %q, not \"true\" or \"false\"", k, v)
		}
	}
	for _, pair := range [][2]string{{annSidecarCPURequest, annSidecarCPULimit}, {annSidecarMemRequest, annSidecarMemLimit}} {
		req, errReq := resource.ParseQuantity(ann[pair[0]])
		lim, errLim := resource.ParseQuantity(ann[pair[1]])
		if ann[pair[0]] != "" && errReq != nil {
			fail("%s %q: %v", pair[0], ann[pair[0]], errReq)
		}
		if ann[pair[1]] != "" && errLim != nil {
			fail("%s %q: %v", pair[1], ann[pair[1]], errLim)
		}
		if errReq == nil && errLim == nil && req.Cmp(lim) > 0 {
			fail("%s %s is above %s %s", pair[0], req.String(), pair[1], lim.String())
		}
	}
	if cfg := ann[annConfig]; cfg != "" {
		if _, ok := s.Configurations[cfg]; !ok {
			fail("%s names Configuration %q, which this overlay does not have", annConfig, cfg)
		}
	}

	c, ok := AppContainer(d)
	if !ok {
		fail("no container listens on the %s %q", annAppPort, ann[annAppPort])
		return errs
	}
	port, err := strconv.Atoi(ann[annAppPort])
	if err != nil {
		return errs // reported above: no container listens on it
	}
	// The environment `dapr run` gives an app, which the services read.
	if v, ok := EnvValue(c, "APP_PORT"); !ok || v != strconv.Itoa(port) {
		fail("container %s: APP_PORT is %q, not the %s %d", c.Name, v, annAppPort, port)
	}
	if v, ok := EnvValue(c, "APP_ID"); !ok || v != appID {
		fail("container %s: APP_ID is %q, not the %s %q", c.Name, v, annAppID, appID)
	}
	// dapr.yaml keeps the apps on 127.0.0.1 locally; in a pod the kubelet's
	// probes come from the node, and an app on loopback would never be ready.
	if v, ok := EnvValue(c, "APP_LISTEN_HOST"); ok && isLoopback(v) {
		fail("container %s: APP_LISTEN_HOST is %s, which the kubelet's probes cannot reach", c.Name, v)
	}
	// As dapr.yaml gives the apps locally: one P per core of the CPU limit. Go
	// otherwise takes one per core of the node, however small the limit.
	if !maxProcsFromCPULimit(c) {
		fail("container %s: GOMAXPROCS is not set from its limits.cpu", c.Name)
	}
	healthPath := ann[annHealthCheckPath]
	for _, p := range []struct {
		kind  string
		probe *corev1.Probe
	}{{"liveness", c.LivenessProbe}, {"readiness", c.ReadinessProbe}} {
		if p.probe == nil {
			continue // reported by containerRules
		}
		if p.probe.HTTPGet == nil {
			fail("container %s: %s probe is not an HTTP GET of %s", c.Name, p.kind, healthPath)
			continue
		}
		if p.probe.HTTPGet.Path != healthPath {
			fail("container %s: %s probe gets %q, not the %s %q", c.Name, p.kind, p.probe.HTTPGet.Path, annHealthCheckPath, healthPath)
		}
		if n, err := resolvePort(c, p.probe.HTTPGet.Port); err == nil && n != int32(port) {
			fail("container %s: %s probe checks port %d, not the %s %d", c.Name, p.kind, n, annAppPort, port)
		}
	}
	return errs
}

// isLoopback reports whether host names a loopback address.
func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// AppContainer returns the container of d that listens on its dapr.io/app-port.
func AppContainer(d *appsv1.Deployment) (corev1.Container, bool) {
	port, err := strconv.Atoi(d.Spec.Template.Annotations[annAppPort])
	if err != nil {
		return corev1.Container{}, false
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			if int(p.ContainerPort) == port {
				return c, true
			}
		}
	}
	return corev1.Container{}, false
}

// maxProcsFromCPULimit reports whether c sets GOMAXPROCS from its own CPU limit.
func maxProcsFromCPULimit(c corev1.Container) bool {
	for _, e := range c.Env {
		if e.Name == "GOMAXPROCS" {
			ref := e.ValueFrom
			return ref != nil && ref.ResourceFieldRef != nil && ref.ResourceFieldRef.Resource == "limits.cpu" &&
				(ref.ResourceFieldRef.ContainerName == "" || ref.ResourceFieldRef.ContainerName == c.Name)
		}
	}
	return false
}

// EnvValue returns the literal value of the environment variable name in c.
func EnvValue(c corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, e.ValueFrom == nil
		}
	}
	return "", false
}

func (s *Set) serviceRules() []error {
	var errs []error
	for _, svc := range sortedValues(s.Services) {
		fail := reporter(&errs, "Service", svc.Name)
		for _, msg := range utilvalidation.IsDNS1035Label(svc.Name) {
			fail("name: %s", msg)
		}
		if len(svc.Spec.Selector) == 0 {
			fail("no selector")
			continue
		}
		sel := labels.SelectorFromSet(svc.Spec.Selector)
		var targets []*appsv1.Deployment
		for _, d := range sortedValues(s.Deployments) {
			if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				targets = append(targets, d)
			}
		}
		if len(targets) != 1 {
			fail("selector %s matches %d Deployments, not one", sel, len(targets))
			continue
		}
		for _, p := range svc.Spec.Ports {
			found := false
			for _, c := range targets[0].Spec.Template.Spec.Containers {
				if _, err := resolvePort(c, p.TargetPort); err == nil {
					found = true
				}
			}
			if !found {
				fail("port %s: targetPort %s is not a port of Deployment/%s", p.Name, p.TargetPort.String(), targets[0].Name)
			}
		}
	}
	return errs
}

func (s *Set) hpaRules() []error {
	var errs []error
	for _, h := range sortedValues(s.HPAs) {
		fail := reporter(&errs, "HorizontalPodAutoscaler", h.Name)
		ref := h.Spec.ScaleTargetRef
		d, ok := s.Deployments[ref.Name]
		if ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" || !ok {
			fail("scaleTargetRef %s %s/%s is not a Deployment of this overlay", ref.APIVersion, ref.Kind, ref.Name)
			continue
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 1 {
			fail("minReplicas is not set to at least 1")
		} else if *h.Spec.MinReplicas > h.Spec.MaxReplicas {
			fail("minReplicas %d is above maxReplicas %d", *h.Spec.MinReplicas, h.Spec.MaxReplicas)
		}
		if d.Spec.Replicas != nil {
			fail("Deployment/%s sets replicas, which every apply would set back under its autoscaler", d.Name)
		}
		if len(h.Spec.Metrics) == 0 {
			fail("no metrics")
		}
		for _, m := range h.Spec.Metrics {
			// A utilization target is a share of the request: without a request
			// the autoscaler has nothing to divide by and never scales.
			var container, res string
			switch {
			case m.Resource != nil:
				res = string(m.Resource.Name)
			case m.ContainerResource != nil:
				container, res = m.ContainerResource.Container, string(m.ContainerResource.Name)
			default:
				continue
			}
			found := false
			for _, c := range d.Spec.Template.Spec.Containers {
				if container != "" && c.Name != container {
					continue
				}
				found = true
				if _, ok := c.Resources.Requests[corev1.ResourceName(res)]; !ok {
					fail("metric %s: container %s of Deployment/%s has no %s request", res, c.Name, d.Name, res)
				}
			}
			if !found {
				fail("metric %s: Deployment/%s has no container %q", res, d.Name, container)
			}
		}
	}
	return errs
}

func (s *Set) pdbRules() []error {
	var errs []error
	for _, p := range sortedValues(s.PDBs) {
		fail := reporter(&errs, "PodDisruptionBudget", p.Name)
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil || sel.Empty() {
			fail("no usable selector")
			continue
		}
		var matched []*appsv1.Deployment
		for _, d := range sortedValues(s.Deployments) {
			if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				matched = append(matched, d)
			}
		}
		if len(matched) != 1 {
			fail("selector %s matches %d Deployments, not one", sel, len(matched))
			continue
		}
		if (p.Spec.MinAvailable == nil) == (p.Spec.MaxUnavailable == nil) {
			fail("exactly one of minAvailable and maxUnavailable must be set")
		}
		// A budget that allows no disruption blocks every node drain.
		if p.Spec.MaxUnavailable != nil && p.Spec.MaxUnavailable.Type == intstr.Int && p.Spec.MaxUnavailable.IntVal < 1 {
			fail("maxUnavailable %d lets no pod go, so no node can be drained", p.Spec.MaxUnavailable.IntVal)
		}
		if d := matched[0]; p.Spec.MinAvailable != nil && p.Spec.MinAvailable.Type == intstr.Int && d.Spec.Replicas != nil &&
			p.Spec.MinAvailable.IntVal >= *d.Spec.Replicas {
			fail("minAvailable %d with %d replicas of Deployment/%s lets no pod go, so no node can be drained",
				p.Spec.MinAvailable.IntVal, *d.Spec.Replicas, d.Name)
		}
	}
	return errs
}

func (s *Set) componentRules(apps map[string]*appsv1.Deployment) []error {
	var errs []error
	for _, name := range sortedKeys(s.Components) {
		c := s.Components[name]
		fail := reporter(&errs, "Component", name)
		for _, scope := range c.Scopes {
			if _, ok := apps[scope]; !ok {
				fail("scope %q is not the app-id of any app in this overlay", scope)
			}
		}
		seen := map[string]bool{}
		for _, m := range c.Spec.Metadata {
			if seen[m.Name] {
				fail("metadata %s is set twice", m.Name)
			}
			seen[m.Name] = true
			if secretLike.MatchString(m.Name) && m.SecretKeyRef == nil {
				fail("metadata %s holds a credential: take it from a Secret with secretKeyRef, never a value in the manifest", m.Name)
			}
			if r := m.SecretKeyRef; r != nil {
				if m.Value != nil {
					fail("metadata %s has both a value and a secretKeyRef", m.Name)
				}
				if r.Key == "" {
					fail("metadata %s: secretKeyRef to %q names no key", m.Name, r.Name)
				}
				// The Secret itself is not in every overlay (production creates it
				// outside the repository); where it is, the key must be there.
				if sec, ok := s.Secrets[r.Name]; ok {
					_, inData := sec.Data[r.Key]
					_, inString := sec.StringData[r.Key]
					if !inData && !inString {
						fail("metadata %s: Secret/%s has no key %q", m.Name, r.Name, r.Key)
					}
				}
			}
		}
	}
	return errs
}

func (s *Set) configurationRules(apps map[string]*appsv1.Deployment) []error {
	var errs []error
	for _, name := range sortedKeys(s.Configurations) {
		c := s.Configurations[name]
		fail := reporter(&errs, "Configuration", name)
		ac := c.Spec.AccessControl
		if ac == nil {
			continue
		}
		if !isAction(ac.DefaultAction) {
			fail("accessControl.defaultAction %q is not allow or deny", ac.DefaultAction)
		}
		for i, p := range ac.Policies {
			at := fmt.Sprintf("accessControl.policies[%d] (%s)", i, p.AppID)
			if _, ok := apps[p.AppID]; !ok {
				fail("%s: appId %q is not the app-id of any app in this overlay", at, p.AppID)
			}
			// daprd refuses to start with a policy that names no trust domain
			// or namespace, and a namespace other than the caller's matches
			// nothing: the caller would be denied without a hint why.
			if p.TrustDomain == "" {
				fail("%s: no trustDomain, which daprd refuses", at)
			}
			if p.Namespace == "" {
				fail("%s: no namespace, which daprd refuses", at)
			} else if p.Namespace != c.Metadata.Namespace {
				fail("%s: namespace %q is not the namespace %q the apps run in", at, p.Namespace, c.Metadata.Namespace)
			}
			if p.DefaultAction != "" && !isAction(p.DefaultAction) {
				fail("%s: defaultAction %q is not allow or deny", at, p.DefaultAction)
			}
			for _, op := range p.Operations {
				if !strings.HasPrefix(op.Name, "/") {
					fail("%s: operation %q does not start with /", at, op.Name)
				}
				if !isAction(op.Action) {
					fail("%s: operation %s: action %q is not allow or deny", at, op.Name, op.Action)
				}
				for _, v := range op.HTTPVerb {
					if v != "*" && !slices.Contains(httpMethods, v) {
						fail("%s: operation %s: httpVerb %q is not an HTTP method or *", at, op.Name, v)
					}
				}
			}
		}
	}
	return errs
}

var httpMethods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace,
}

func isAction(a string) bool { return a == "allow" || a == "deny" }

func (s *Set) resiliencyRules(apps map[string]*appsv1.Deployment) []error {
	var errs []error
	for _, name := range sortedKeys(s.Resiliencies) {
		r := s.Resiliencies[name]
		fail := reporter(&errs, "Resiliency", name)
		pol := r.Spec.Policies
		for _, scope := range r.Scopes {
			if _, ok := apps[scope]; !ok {
				fail("scope %q is not the app-id of any app in this overlay", scope)
			}
		}
		duration := func(what, v string) {
			if v == "" {
				return
			}
			if d, err := time.ParseDuration(v); err != nil || d <= 0 {
				fail("%s %q is not a positive duration", what, v)
			}
		}
		for n, t := range pol.Timeouts {
			duration("timeouts."+n, t)
		}
		for n, rp := range pol.Retries {
			if rp.Policy != "constant" && rp.Policy != "exponential" {
				fail("retries.%s: policy %q is not constant or exponential", n, rp.Policy)
			}
			duration("retries."+n+".duration", rp.Duration)
			duration("retries."+n+".maxInterval", rp.MaxInterval)
			if rp.MaxRetries == nil {
				// Dapr's default is -1, retry forever: say so on purpose.
				fail("retries.%s: no maxRetries (Dapr would retry forever)", n)
			}
		}
		for n, cb := range pol.CircuitBreakers {
			duration("circuitBreakers."+n+".interval", cb.Interval)
			duration("circuitBreakers."+n+".timeout", cb.Timeout)
			if cb.Trip == "" {
				fail("circuitBreakers.%s: no trip condition", n)
			}
		}
		uses := func(target string, p PolicyNames) {
			if _, ok := pol.Timeouts[p.Timeout]; p.Timeout != "" && !ok {
				fail("%s: timeout %q is not defined", target, p.Timeout)
			}
			if _, ok := pol.Retries[p.Retry]; p.Retry != "" && !ok {
				fail("%s: retry %q is not defined", target, p.Retry)
			}
			if _, ok := pol.CircuitBreakers[p.CircuitBreaker]; p.CircuitBreaker != "" && !ok {
				fail("%s: circuitBreaker %q is not defined", target, p.CircuitBreaker)
			}
		}
		for app, p := range r.Spec.Targets.Apps {
			if _, ok := apps[app]; !ok {
				fail("targets.apps.%s: not the app-id of any app in this overlay", app)
			}
			uses("targets.apps."+app, p)
		}
		for comp, t := range r.Spec.Targets.Components {
			if _, ok := s.Components[comp]; !ok {
				fail("targets.components.%s: no such Component in this overlay", comp)
			}
			if t.Inbound != nil {
				uses("targets.components."+comp+".inbound", *t.Inbound)
			}
			if t.Outbound != nil {
				uses("targets.components."+comp+".outbound", *t.Outbound)
			}
		}
	}
	return errs
}

func (s *Set) subscriptionRules(apps map[string]*appsv1.Deployment) []error {
	var errs []error
	for _, name := range sortedKeys(s.Subscriptions) {
		sub := s.Subscriptions[name]
		fail := reporter(&errs, "Subscription", name)
		if _, ok := s.Components[sub.Spec.PubsubName]; !ok {
			fail("pubsubname %q is no Component of this overlay", sub.Spec.PubsubName)
		}
		if sub.Spec.DeadLetterTopic == "" {
			fail("no deadLetterTopic: every subscription of the shop has one")
		}
		for _, scope := range sub.Scopes {
			if _, ok := apps[scope]; !ok {
				fail("scope %q is not the app-id of any app in this overlay", scope)
			}
		}
	}
	return errs
}

// reporter returns a function that records in errs a problem of the object
// kind/name, worded by format and a.
func reporter(errs *[]error, kind, name string) func(format string, a ...any) {
	return func(format string, a ...any) {
		*errs = append(*errs, fmt.Errorf("%s/%s: %s", kind, name, fmt.Sprintf(format, a...)))
	}
}

func probePort(p *corev1.Probe) (intstr.IntOrString, bool) {
	switch {
	case p.HTTPGet != nil:
		return p.HTTPGet.Port, true
	case p.TCPSocket != nil:
		return p.TCPSocket.Port, true
	case p.GRPC != nil:
		return intstr.FromInt32(p.GRPC.Port), true
	}
	return intstr.IntOrString{}, false
}

// resolvePort returns the number of port in c, which may name one of c's ports.
func resolvePort(c corev1.Container, port intstr.IntOrString) (int32, error) {
	if port.Type == intstr.Int {
		for _, p := range c.Ports {
			if p.ContainerPort == port.IntVal {
				return port.IntVal, nil
			}
		}
		return 0, fmt.Errorf("port %d is not a port of container %s", port.IntVal, c.Name)
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return p.ContainerPort, nil
		}
	}
	return 0, fmt.Errorf("container %s has no port named %q", c.Name, port.StrVal)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sortedValues[V any](m map[string]V) []V {
	var vs []V
	for _, k := range sortedKeys(m) {
		vs = append(vs, m[k])
	}
	return vs
}
