#!/usr/bin/env bash
# The demo on a fresh Debian 12 machine: install what is missing, build and
# install the extension, start the API simulator and a throw-away
# PostgreSQL cluster (as the postgres user, via pg_virtualenv), create the
# server, user mapping and table, and print the results of a few queries.
#
#   test/run-demo.sh

set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

install_dependencies
build_and_install
start_simulator

echo "== demo queries"
pg_virtualenv -v "$OPREC_PG_VERSION" -o "shared_preload_libraries=oprec_fdw" \
    -o "oprec_fdw.mirror_databases=postgres" \
    psql -X -v ON_ERROR_STOP=1 -v sim_url="$OPREC_SIM_URL" -f "$OPREC_ROOT/test/demo.sql"
