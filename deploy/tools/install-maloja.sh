#!/usr/bin/env bash
# Installs a real Maloja server (PyPI malojaserver), which the integration tests start to check
# that our Maloja client speaks what Maloja itself accepts, into its own virtual environment
# (Maloja pins its own dependencies, which must not meet the project's), idempotently:
#
#   .local/tools/maloja-venv/bin/maloja
#
# Called by install-linters.sh (so `make test` installs it on a fresh machine); runs alone
# too. Needs python3 with venv (Maloja 3.2 takes Python >= 3.10). Prints nothing on stdout;
# progress goes to stderr. SCROBBLE_TOOLS_DIR overrides .local/tools.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
INSTALLER=install-maloja
# shellcheck source=deploy/tools/common.sh
source "$SCRIPT_DIR/common.sh"
VENV="$TOOLS/maloja-venv"

MALOJA_VERSION=3.2.3

# The version recorded beside the environment once pip succeeded: a half-made environment
# (pip killed midway) has none and is made again.
STAMP="$VENV/.malojaserver.version"

if [[ -x "$VENV/bin/maloja" && "$(cat "$STAMP" 2>/dev/null)" == "$MALOJA_VERSION" ]]; then
	log "malojaserver $MALOJA_VERSION: already in $VENV"
	exit 0
fi

log "malojaserver $MALOJA_VERSION: pip install into $VENV (first time: a minute or two) ..."
rm -rf "$VENV"
python3 -m venv "$VENV" >&2 || die "python3 -m venv $VENV failed (Debian: apt-get install python3-venv)"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
	"malojaserver==$MALOJA_VERSION" >&2 || die "pip install malojaserver==$MALOJA_VERSION failed"
[[ -x "$VENV/bin/maloja" ]] || die "no maloja command in $VENV/bin after pip install"
echo "$MALOJA_VERSION" >"$STAMP"
log "ready: $VENV/bin/maloja"
