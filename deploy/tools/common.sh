# shellcheck shell=bash
# Sourced by the install-*.sh scripts beside it (not run alone), after they set SCRIPT_DIR
# and INSTALLER (the name their lines start with): where the tools go (.local/tools, or
# SCROBBLE_TOOLS_DIR), log and die on stderr, and a Debian package installed when missing.

REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
TOOLS="${SCROBBLE_TOOLS_DIR:-$REPO_ROOT/.local/tools}"

log() { printf '[%s] %s\n' "$INSTALLER" "$*" >&2; }
die() {
	printf '[%s] ERROR: %s\n' "$INSTALLER" "$*" >&2
	exit 1
}

# apt_install PACKAGE MISSING: Debian's PACKAGE, for the MISSING command(s); as root only.
apt_install() {
	local package="$1" missing="$2"
	[[ $EUID -eq 0 ]] || die "$missing missing; as root: apt-get install -y $package"
	log "$package: installing Debian package $package ..."
	{ apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$package" >&2; } ||
		die "apt-get install -y $package failed"
}
