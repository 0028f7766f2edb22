#!/usr/bin/env bash
# Installs axe-core (the accessibility engine the page's browser tests run inside each page)
# from the npm registry into .local/tools/node, idempotently:
#
#   .local/tools/node/node_modules/axe-core/axe.min.js
#
# Called by install-linters.sh (so `make test` installs it on a fresh machine); runs alone
# too. Needs npm (Debian's npm package, apt-get installed as root when missing). Prints
# nothing on stdout; progress goes to stderr. SCROBBLE_TOOLS_DIR overrides .local/tools.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
INSTALLER=install-axe
# shellcheck source=deploy/tools/common.sh
source "$SCRIPT_DIR/common.sh"
NODE_DIR="$TOOLS/node"

AXE_CORE_VERSION=4.14.1

installed_version() {
	local manifest="$NODE_DIR/node_modules/axe-core/package.json"
	[[ -f "$manifest" ]] || return 0
	sed -n 's/^  "version": "\([^"]*\)".*/\1/p' "$manifest" | head -n 1
}

if [[ "$(installed_version)" == "$AXE_CORE_VERSION" && -f "$NODE_DIR/node_modules/axe-core/axe.min.js" ]]; then
	log "axe-core $AXE_CORE_VERSION: already in $NODE_DIR"
	exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
	apt_install npm npm
fi

log "axe-core $AXE_CORE_VERSION: npm install into $NODE_DIR ..."
mkdir -p "$NODE_DIR"
# A package.json of our own keeps npm from walking up into the repository.
[[ -f "$NODE_DIR/package.json" ]] || printf '{"private": true}\n' >"$NODE_DIR/package.json"
npm install --prefix "$NODE_DIR" --no-audit --no-fund --save-exact --loglevel=error \
	"axe-core@$AXE_CORE_VERSION" >&2 || die "npm install axe-core@$AXE_CORE_VERSION failed"
[[ "$(installed_version)" == "$AXE_CORE_VERSION" ]] || die "axe-core $AXE_CORE_VERSION not found after npm install"
log "ready: $NODE_DIR/node_modules/axe-core/axe.min.js"
