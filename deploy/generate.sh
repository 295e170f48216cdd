#!/usr/bin/env bash
# Regenerates what deploy/ derives from other sources:
#   - crds/ (and the chart's copy) from the Go types of api/v1alpha1 and
#     their kubebuilder markers, with controller-gen;
#   - install.yaml, plain manifests, from the Helm chart helm/causeway.
# Both tools are pinned here and built through the Go module proxy.
# `go test ./deploy/` fails when what is committed is stale.
set -euo pipefail
cd "$(dirname "$0")/.."

CONTROLLER_GEN=sigs.k8s.io/controller-tools/cmd/controller-gen@v0.23.0
HELM=helm.sh/helm/v3/cmd/helm@v3.22.0

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

go run "$CONTROLLER_GEN" crd paths=./api/v1alpha1/... output:crd:artifacts:config="$tmp/crds"
rm -f deploy/crds/*.yaml deploy/helm/causeway/crds/*.yaml
cp "$tmp"/crds/*.yaml deploy/crds/
cp "$tmp"/crds/*.yaml deploy/helm/causeway/crds/
# The sources the CRDs were made from (field comments become their
# descriptions, so any change counts); deploy_test.go compares.
find api/v1alpha1 -maxdepth 1 -name '*.go' ! -name '*_test.go' | LC_ALL=C sort | xargs cat | sha256sum | cut -d' ' -f1 >deploy/crds/sources.sha256

{
	echo "# Causeway in Kubernetes mode, rendered from deploy/helm/causeway by"
	echo "# deploy/generate.sh (release causeway, namespace causeway-system,"
	echo "# default values). Do not edit: change the chart and regenerate."
	echo "apiVersion: v1"
	echo "kind: Namespace"
	echo "metadata:"
	echo "  name: causeway-system"
	go run "$HELM" template causeway deploy/helm/causeway --namespace causeway-system --include-crds
} >"$tmp/install.yaml"
mv "$tmp/install.yaml" deploy/install.yaml
