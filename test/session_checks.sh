# Shared by the checks that need more than one session (test/dying_backends.sh,
# test/mirror_crash.sh): the simulator's control calls, a psql of the
# cluster pg_virtualenv made, and a counted check.  Sourced, not run.

: "${OPREC_SIM_URL:?run through test/suite.sh, which starts the simulator}"

# POST to a control endpoint of the simulator: sim reset; sim config '{...}'
sim() { curl -sf -X POST "$OPREC_SIM_URL/_sim/$1" ${2:+-H 'Content-Type: application/json' --data-binary "$2"} >/dev/null; }

# psql with :sim_url set, stopping at the first error, values only
q() { psql -X -q -At -v ON_ERROR_STOP=1 -v sim_url="$OPREC_SIM_URL" "$@" 2>&1; }

passed=0
failed=0

# check WHAT yes|no [DETAIL]: print "ok - WHAT" or "not ok - WHAT: DETAIL", and count it
check() {
    local what="$1" ok="$2" detail="${3:-}"
    if [ "$ok" = yes ]; then
        passed=$((passed + 1))
        echo "ok - $what"
    else
        failed=$((failed + 1))
        echo "not ok - $what${detail:+: $detail}"
    fi
}

# terminate_backend PID: pg_terminate_backend, and check that it ended
terminate_backend() {
    q -c "SELECT pg_terminate_backend($1, 10000)" >/dev/null
    check "terminated: the backend ended" \
        "$([ "$(q -c "SELECT count(*) FROM pg_stat_activity WHERE pid = $1")" = 0 ] && echo yes || echo no)"
}

# kill_backend PID: SIGKILL, then wait for the postmaster to restart every
# backend, and check that the cluster is back
kill_backend() {
    kill -KILL "$1"
    for _ in $(seq 1 100); do
        q -c 'SELECT 1' >/dev/null 2>&1 && break
        sleep 0.2
    done
    check "killed: the cluster is back" "$(q -c 'SELECT 1' 2>/dev/null | grep -qx 1 && echo yes || echo no)"
}
