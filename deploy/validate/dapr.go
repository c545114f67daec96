package validate

// The Dapr resources, reduced to the fields the rules read. They are decoded
// only after the CRD schema has accepted the object, so they need not be
// strict themselves; the shape follows github.com/dapr/dapr/pkg/apis at
// DaprVersion, without importing that module and all it requires.

// ObjectMeta is the part of metadata the rules read.
type ObjectMeta struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
}

// Component is a Dapr component (dapr.io/v1alpha1).
type Component struct {
	Metadata ObjectMeta `json:"metadata"`
	Spec     struct {
		Type     string         `json:"type"`
		Version  string         `json:"version"`
		Metadata []MetadataItem `json:"metadata"`
	} `json:"spec"`
	Scopes []string `json:"scopes"`
}

// MetadataItem is one name/value pair of a component's metadata.
type MetadataItem struct {
	Name         string        `json:"name"`
	Value        any           `json:"value,omitempty"`
	SecretKeyRef *SecretKeyRef `json:"secretKeyRef,omitempty"`
	EnvRef       string        `json:"envRef,omitempty"`
}

// SecretKeyRef names a key of a secret in the component's secret store, on
// Kubernetes a Secret of the component's namespace.
type SecretKeyRef struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

// Configuration is a Dapr Configuration (dapr.io/v1alpha1), of which the rules
// read access control and tracing.
type Configuration struct {
	Metadata ObjectMeta `json:"metadata"`
	Spec     struct {
		AccessControl *AccessControl `json:"accessControl"`
		Tracing       *struct {
			SamplingRate string `json:"samplingRate"`
		} `json:"tracing"`
	} `json:"spec"`
}

// AccessControl is the access-control list a sidecar applies to the calls it
// receives.
type AccessControl struct {
	DefaultAction string      `json:"defaultAction"`
	TrustDomain   string      `json:"trustDomain"`
	Policies      []AppPolicy `json:"policies"`
}

// AppPolicy is what one calling app may do.
type AppPolicy struct {
	AppID         string `json:"appId"`
	DefaultAction string `json:"defaultAction"`
	TrustDomain   string `json:"trustDomain"`
	Namespace     string `json:"namespace"`
	Operations    []struct {
		Name     string   `json:"name"`
		HTTPVerb []string `json:"httpVerb"`
		Action   string   `json:"action"`
	} `json:"operations"`
}

// Resiliency is a Dapr Resiliency (dapr.io/v1alpha1).
type Resiliency struct {
	Metadata ObjectMeta `json:"metadata"`
	Scopes   []string   `json:"scopes"`
	Spec     struct {
		Policies struct {
			Timeouts        map[string]string         `json:"timeouts"`
			Retries         map[string]RetryPolicy    `json:"retries"`
			CircuitBreakers map[string]CircuitBreaker `json:"circuitBreakers"`
		} `json:"policies"`
		Targets struct {
			Apps       map[string]PolicyNames `json:"apps"`
			Actors     map[string]PolicyNames `json:"actors"`
			Components map[string]struct {
				Inbound  *PolicyNames `json:"inbound"`
				Outbound *PolicyNames `json:"outbound"`
			} `json:"components"`
		} `json:"targets"`
	} `json:"spec"`
}

// RetryPolicy is one named retry policy.
type RetryPolicy struct {
	Policy      string `json:"policy"`
	Duration    string `json:"duration"`
	MaxInterval string `json:"maxInterval"`
	MaxRetries  *int   `json:"maxRetries"`
}

// CircuitBreaker is one named circuit breaker.
type CircuitBreaker struct {
	MaxRequests int    `json:"maxRequests"`
	Interval    string `json:"interval"`
	Timeout     string `json:"timeout"`
	Trip        string `json:"trip"`
}

// PolicyNames is what a target uses, by policy name.
type PolicyNames struct {
	Timeout        string `json:"timeout"`
	Retry          string `json:"retry"`
	CircuitBreaker string `json:"circuitBreaker"`
}

// Subscription is a declarative Dapr subscription (dapr.io/v1alpha1 or
// v2alpha1), of which the rules read what refers to other objects.
type Subscription struct {
	Metadata ObjectMeta `json:"metadata"`
	Scopes   []string   `json:"scopes"`
	Spec     struct {
		PubsubName      string `json:"pubsubname"`
		Topic           string `json:"topic"`
		DeadLetterTopic string `json:"deadLetterTopic"`
	} `json:"spec"`
}
