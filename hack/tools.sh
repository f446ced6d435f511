#!/usr/bin/env bash
# Builds every pinned tool once into $INFSCALE_CACHE/tools/<name>-<version>/bin.
# A tool whose directory carries a .complete stamp is reused; a warm run takes seconds.
# Usage: hack/tools.sh [all|uv|kwok|etcd|helm|prometheus|kubernetes|adapter|karpenter|gateway]...
# "all" is what the cluster and the tests need, the real peer autoscalers included.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export CGO_ENABLED=0 GOFLAGS=-mod=mod

is_built() { [[ -f "$(tool_dir "$1" "$2")/.complete" ]]; }
mark_built() { touch "$(tool_dir "$1" "$2")/.complete"; }

build_uv() {
  is_built uv "$UV_VERSION" && return 0
  local dir; dir="$(tool_dir uv "$UV_VERSION")"
  rm -rf "$dir"
  python3 -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check "uv==$UV_VERSION"
  mark_built uv "$UV_VERSION"
}

build_kwok() {
  is_built kwok "$KWOK_VERSION" && return 0
  local dir; dir="$(tool_dir kwok "$KWOK_VERSION")"
  mkdir -p "$dir/bin"
  GOBIN="$dir/bin" go install \
    -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"
  mark_built kwok "$KWOK_VERSION"
}

build_helm() {
  is_built helm "$HELM_VERSION" && return 0
  local dir; dir="$(tool_dir helm "$HELM_VERSION")"
  mkdir -p "$dir/bin"
  GOBIN="$dir/bin" go install \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  mark_built helm "$HELM_VERSION"
}

# etcd's server module is a main package whose go.mod replaces its siblings with local paths,
# so `go install pkg@version` refuses it; a wrapper module that requires it builds fine.
build_etcd() {
  is_built etcd "$ETCD_VERSION" && return 0
  local dir; dir="$(tool_dir etcd "$ETCD_VERSION")"
  rm -rf "$dir/src"; mkdir -p "$dir/src" "$dir/bin"
  (
    cd "$dir/src"
    printf 'module infscale.dev/tools/etcd\n\ngo 1.24\n' > go.mod
    go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
    go build -trimpath -ldflags "-s -w" -o "$dir/bin/etcd" go.etcd.io/etcd/server/v3
  )
  "$dir/bin/etcd" --version | head -1
  mark_built etcd "$ETCD_VERSION"
}

# Kubernetes' control plane from the Go module proxy: a wrapper module that requires
# k8s.io/kubernetes and points every staging module at its published v0.x.y twin.
KUBE_STAGING_MODULES=(
  api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider
  cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api
  cri-client csi-translation-lib dynamic-resource-allocation endpointslice externaljwt kms
  kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics
  mount-utils pod-security-admission sample-apiserver
)
KUBE_COMMANDS=(kube-apiserver kube-controller-manager kube-scheduler kubectl)

build_kubernetes() {
  is_built kubernetes "$KUBERNETES_VERSION" && return 0
  local dir; dir="$(tool_dir kubernetes "$KUBERNETES_VERSION")"
  rm -rf "$dir/src"; mkdir -p "$dir/src" "$dir/bin"
  local minor="${KUBERNETES_VERSION#v1.}"; minor="${minor%%.*}"
  local ldflags="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
    ldflags+=" -X $pkg.gitCommit=$KUBERNETES_VERSION"
  done
  (
    cd "$dir/src"
    {
      printf 'module infscale.dev/tools/kubernetes\n\ngo 1.24\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$KUBERNETES_VERSION"
      local m; for m in "${KUBE_STAGING_MODULES[@]}"; do
        printf '\tk8s.io/%s => k8s.io/%s %s\n' "$m" "$m" "$KUBERNETES_STAGING_VERSION"
      done
      printf ')\n'
    } > go.mod
    local cmd
    for cmd in "${KUBE_COMMANDS[@]}"; do
      log "    building $cmd"
      go build -trimpath -tags selinux,notest -ldflags "$ldflags" -o "$dir/bin/$cmd" "k8s.io/kubernetes/cmd/$cmd"
    done
  )
  "$dir/bin/kube-apiserver" --version
  mark_built kubernetes "$KUBERNETES_VERSION"
}

# prometheus-adapter serves the external metrics API that kube-controller-manager's own HPA
# scales on; its main package is built from a wrapper module that requires it.
build_adapter() {
  is_built adapter "$PROMETHEUS_ADAPTER_VERSION" && return 0
  local dir; dir="$(tool_dir adapter "$PROMETHEUS_ADAPTER_VERSION")"
  rm -rf "$dir/src"; mkdir -p "$dir/src" "$dir/bin"
  (
    cd "$dir/src"
    printf 'module infscale.dev/tools/adapter\n\ngo 1.24\n' > go.mod
    go get "sigs.k8s.io/prometheus-adapter@$PROMETHEUS_ADAPTER_VERSION"
    go build -trimpath -ldflags "-s -w" -o "$dir/bin/prometheus-adapter" \
      sigs.k8s.io/prometheus-adapter/cmd/adapter
  )
  rm -rf "$dir/src"
  mark_built adapter "$PROMETHEUS_ADAPTER_VERSION"
}

# Karpenter with its kwok cloud provider (nodes are kwok's fake nodes); the binary is named
# karpenter-kwok beside kwok's own, and the CRDs it needs are copied from its module.
build_karpenter() {
  is_built karpenter "$KARPENTER_VERSION" && return 0
  local dir; dir="$(tool_dir karpenter "$KARPENTER_VERSION")"
  rm -rf "$dir"; mkdir -p "$dir/bin" "$dir/crds"
  GOBIN="$dir/bin" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/karpenter/kwok@$KARPENTER_VERSION"
  mv "$dir/bin/kwok" "$dir/bin/karpenter-kwok"
  local module; module="$(go env GOMODCACHE)/sigs.k8s.io/karpenter@$KARPENTER_VERSION"
  cp "$module"/kwok/charts/crds/*.yaml "$module/kwok/apis/crds/karpenter.kwok.sh_kwoknodeclasses.yaml" "$dir/crds/"
  chmod u+w "$dir"/crds/*.yaml
  mark_built karpenter "$KARPENTER_VERSION"
}

# Gateway API's standard CRDs (HTTPRoute and what it refers to), from its Go module: the
# integration tests install them to check spec.routing's routes on the real API server.
build_gateway() {
  is_built gateway "$GATEWAY_API_VERSION" && return 0
  local dir; dir="$(tool_dir gateway "$GATEWAY_API_VERSION")"
  rm -rf "$dir"; mkdir -p "$dir/crds"
  local module
  module="$(cd "$dir" && go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [[ -d "$module/config/crd/standard" ]] || die "no CRDs in the gateway-api module ($module)"
  cp "$module"/config/crd/standard/*.yaml "$dir/crds/"
  chmod u+w "$dir"/crds/*.yaml
  mark_built gateway "$GATEWAY_API_VERSION"
}

# Prometheus from Debian's package, unpacked into the cache: no system service is installed.
build_prometheus() {
  is_built prometheus debian && return 0
  local dir; dir="$(tool_dir prometheus debian)"
  rm -rf "$dir"; mkdir -p "$dir/bin" "$dir/deb"
  (
    cd "$dir/deb"
    apt-get download "$PROMETHEUS_DEBIAN_PACKAGE" >/dev/null 2>&1 || {
      log "    apt lists are stale; running apt-get update"
      apt-get update -qq >/dev/null
      apt-get download "$PROMETHEUS_DEBIAN_PACKAGE" >/dev/null
    }
    dpkg -x ./*.deb root
    cp root/usr/bin/prometheus root/usr/bin/promtool "$dir/bin/"
  )
  rm -rf "$dir/deb"
  "$dir/bin/prometheus" --version 2>&1 | head -1
  mark_built prometheus debian
}

main() {
  local targets=("$@")
  [[ ${#targets[@]} -eq 0 || "${targets[0]}" == all ]] && targets=(uv prometheus kwok etcd helm kubernetes adapter karpenter gateway)
  command -v go >/dev/null || die "Go >= 1.26 is needed to build the tools (https://go.dev/dl)"
  local t total=$SECONDS
  # One builder at a time: a second caller (another test run, the demo) waits for the first
  # instead of deleting the build directory under it.
  mkdir -p "$TOOLS_DIR"
  exec {lock}>"$TOOLS_DIR/.lock"
  if ! flock -n "$lock"; then
    log "another tools.sh is building; waiting for it"
    flock "$lock"
  fi
  for t in "${targets[@]}"; do
    if is_built "$t" "$(version_of "$t")"; then
      log "tool $t $(version_of "$t"): cached"
    else
      step "build $t $(version_of "$t") (cold build; go output follows)" "build_$t"
    fi
  done
  log "tools ready in $TOOLS_DIR ($((SECONDS - total)) s)"
}

version_of() {
  case "$1" in
    uv) echo "$UV_VERSION" ;; kwok) echo "$KWOK_VERSION" ;; etcd) echo "$ETCD_VERSION" ;;
    helm) echo "$HELM_VERSION" ;; adapter) echo "$PROMETHEUS_ADAPTER_VERSION" ;;
    karpenter) echo "$KARPENTER_VERSION" ;; kubernetes) echo "$KUBERNETES_VERSION" ;; prometheus) echo debian ;;
    gateway) echo "$GATEWAY_API_VERSION" ;;
    *) die "unknown tool $1" ;;
  esac
}

main "$@"
