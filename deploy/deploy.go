// Package deploy holds Causeway's Kubernetes manifests, which sit outside
// the data flow: they install `causeway controller`, whose provider reads
// the API server. crds/ are the CustomResourceDefinitions of the kinds of
// api/v1alpha1, generated from the Go types by generate.sh; helm/causeway
// is the Helm chart (Deployment, ServiceAccount, least-privilege RBAC, the
// CRDs); install.yaml is the chart rendered with its default values. The
// package embeds them so that tests and tools use the files that clusters
// get.
package deploy

import "embed"

// CRDs holds crds/*.yaml, one CustomResourceDefinition per file.
//
//go:embed crds/*.yaml
var CRDs embed.FS

// Install is install.yaml: a Namespace, the CRDs and the chart's objects.
//
//go:embed install.yaml
var Install []byte

// Chart is the Helm chart, under helm/causeway.
//
//go:embed all:helm/causeway
var Chart embed.FS
