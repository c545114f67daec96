package validate

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// DaprVersion is the Dapr release whose CRDs are in crds/, copied unchanged
// from charts/dapr/crds/ of github.com/dapr/dapr at that tag. It must be the
// version the shop runs (DAPR_VERSION in the Makefile, the dapr/dapr require of
// the root go.mod); TestCRDsMatchPinnedDapr holds the three together.
const DaprVersion = "1.17.5"

//go:embed crds/*.yaml
var crdFiles embed.FS

// crdVersion is one served version of a CRD, ready to check objects as the API
// server would: the structural schema drives pruning (which reports unknown
// fields) and the OpenAPI validator checks types, required fields and enums.
type crdVersion struct {
	structural *structuralschema.Structural
	validator  apiservervalidation.SchemaValidator
}

// Schemas holds the CRD schemas by "group/version/Kind".
type Schemas struct {
	byGVK map[string]crdVersion
}

// LoadDaprSchemas reads the embedded Dapr CRDs.
func LoadDaprSchemas() (*Schemas, error) {
	return loadSchemas(crdFiles, "crds")
}

func loadSchemas(fsys fs.FS, dir string) (*Schemas, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	s := &Schemas{byGVK: map[string]crdVersion{}}
	for _, e := range entries {
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		if err := s.add(b); err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
	}
	return s, nil
}

func (s *Schemas) add(crdYAML []byte) error {
	j, err := yaml.YAMLToJSON(crdYAML)
	if err != nil {
		return err
	}
	var crd apiextensionsv1.CustomResourceDefinition
	strict, err := sigsjson.UnmarshalStrict(j, &crd, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	if len(strict) > 0 {
		return errors.Join(strict...)
	}
	for _, v := range crd.Spec.Versions {
		if !v.Served || v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
			continue
		}
		// The validation code works on the internal (unversioned) form of the
		// schema, as inside the API server.
		internal := new(apiextensions.JSONSchemaProps)
		if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v.Schema.OpenAPIV3Schema, internal, nil); err != nil {
			return fmt.Errorf("version %s: %w", v.Name, err)
		}
		st, err := structuralschema.NewStructural(internal)
		if err != nil {
			return fmt.Errorf("version %s: %w", v.Name, err)
		}
		// A CRD whose schema is not structural is refused by the API server; a
		// copy that is not would make every check below meaningless.
		if errs := structuralschema.ValidateStructural(nil, st); len(errs) > 0 {
			return fmt.Errorf("version %s: schema is not structural: %w", v.Name, errs.ToAggregate())
		}
		val, _, err := apiservervalidation.NewSchemaValidator(internal)
		if err != nil {
			return fmt.Errorf("version %s: %w", v.Name, err)
		}
		s.byGVK[crd.Spec.Group+"/"+v.Name+"/"+crd.Spec.Names.Kind] = crdVersion{structural: st, validator: val}
	}
	return nil
}

// Has reports whether a schema for apiVersion and kind is loaded.
func (s *Schemas) Has(apiVersion, kind string) bool {
	_, ok := s.byGVK[apiVersion+"/"+kind]
	return ok
}

// Kinds lists the "group/version/Kind" keys loaded, sorted, for messages.
func (s *Schemas) Kinds() []string {
	var ks []string
	for k := range s.byGVK {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Validate checks o against its CRD schema as the API server checks a custom
// resource on create with strict field validation: every field the schema does
// not know is reported (the server would otherwise drop it without a word,
// which is how a misspelt policy silently becomes no policy), then types,
// required fields and enums are validated. The metadata is decoded strictly
// into ObjectMeta, since the schema leaves it to the server.
func (s *Schemas) Validate(o Object) []error {
	cv, ok := s.byGVK[o.APIVersion+"/"+o.Kind]
	if !ok {
		return []error{fmt.Errorf("%s: no CRD schema for %s %s (loaded: %v)", o, o.APIVersion, o.Kind, s.Kinds())}
	}
	// apimachinery's decoder keeps integers as int64, as the server does, so
	// "integer" in a schema matches 20 but not 20.5 or "20".
	var u map[string]any
	if err := utiljson.Unmarshal(o.JSON, &u); err != nil {
		return []error{fmt.Errorf("%s: %w", o, err)}
	}
	var errs []error
	if md, ok := u["metadata"]; ok {
		b, err := utiljson.Marshal(md)
		if err != nil {
			return []error{fmt.Errorf("%s: metadata: %w", o, err)}
		}
		var meta metav1.ObjectMeta
		strict, err := sigsjson.UnmarshalStrict(b, &meta, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: metadata: %w", o, err))
		}
		for _, e := range strict {
			errs = append(errs, fmt.Errorf("%s: metadata: %w", o, e))
		}
	}
	unknown := pruning.PruneWithOptions(u, cv.structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})
	for _, p := range unknown {
		errs = append(errs, fmt.Errorf("%s: unknown field %q", o, p))
	}
	for _, fe := range apiservervalidation.ValidateCustomResource(nil, u, cv.validator) {
		errs = append(errs, fmt.Errorf("%s: %s", o, fe.Error()))
	}
	return errs
}
