#!/usr/bin/env bash
# The whole test suite, on every PostgreSQL version oprec_fdw supports: the
# host's (15 on Debian 12) on the host, then 17 and 18 in chroots of the
# Debian releases that ship them (test/matrix.sh).  Installs what it needs
# with apt-get (and debootstrap for the chroots); run it as root or with
# sudo.  Exits non-zero on any failure.
#
#   test/run-tests.sh
#
# OPREC_MATRIX=host runs the host's version only, for a quick local run; it
# is ignored in CI (CI=true), which always runs every version.

set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
host_version="$(. "$here/setup.sh" >/dev/null && echo "$OPREC_PG_VERSION")"

versions=("$host_version")
if [ "${OPREC_MATRIX:-all}" != host ] || [ "${CI:-}" = true ]; then
    for v in 15 17 18; do
        [ "$v" = "$host_version" ] || versions+=("$v")
    done
fi
exec bash "$here/matrix.sh" "${versions[@]}"
