#!/usr/bin/env bash
# The whole suite (test/suite.sh) on each PostgreSQL major version asked
# for, each on the Debian release that ships it:
#
#   15  Debian 12 "bookworm" (the host)
#   17  Debian 13 "trixie"
#   18  Debian unstable "sid"
#
# A version the host's release ships runs on the host.  Any other runs in a
# chroot of its release made with debootstrap from the Debian mirror the
# host's apt already uses (read from /etc/apt/sources.list.d/ and
# /etc/apt/sources.list), with /proc, /sys and /dev mounted; suite.sh
# installs PostgreSQL and the rest there with apt-get, builds the extension
# and runs everything: build without warnings, unit test, simulator
# self-check, pg_regress on a preloaded cluster, the multi-session checks
# and the client drivers.  Chroots are kept in $OPREC_MATRIX_DIR (default
# /var/tmp/oprec-matrix) and reused; delete a directory there to start it
# afresh.  Needs root (debootstrap, chroot, mount).
#
#   test/matrix.sh [15|17|18 ...]        default: 15 17 18
#
# Prints "pgN: K passed, M failed" per version, with the minutes each took,
# and exits non-zero if any version failed.

set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MATRIX_DIR="${OPREC_MATRIX_DIR:-/var/tmp/oprec-matrix}"
LOGS="$ROOT/test/matrix-logs"
VERSIONS=("$@")
[ "${#VERSIONS[@]}" -gt 0 ] || VERSIONS=(15 17 18)

# The Debian release whose own packages carry a PostgreSQL version.
release_of() {
    case "$1" in
        15) echo bookworm ;;
        17) echo trixie ;;
        18) echo sid ;;
        *) echo "" ;;
    esac
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

HOST_RELEASE="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"

# The URI of the host's Debian mirror: the source apt uses for the host's
# own release (deb822 .sources stanzas, or one-line "deb" entries).
debian_mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk -v rel="$HOST_RELEASE" '
            function flush() {
                if (uris != "" && (" " suites " ") ~ (" " rel " ") && !found) {
                    split(uris, u, " "); print u[1]; found = 1
                }
                uris = ""; suites = ""
            }
            /^[[:space:]]*$/ { flush(); next }
            tolower($1) == "uris:" { $1 = ""; uris = $0; sub(/^ +/, "", uris) }
            tolower($1) == "suites:" { $1 = ""; suites = $0 }
            END { flush() }' "$f"
    done | head -n 1 | grep . && return 0
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
        awk -v rel="$HOST_RELEASE" '
            $1 == "deb" {
                i = 2
                if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                if ($(i + 1) == rel) { print $i; exit }
            }' | grep .
}

# Mounts of a chroot, undone when the script exits.
MOUNTED=()
unmount_all() {
    local i
    for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
        as_root umount -R "${MOUNTED[$i]}" 2>/dev/null || as_root umount -lR "${MOUNTED[$i]}" 2>/dev/null || true
    done
    MOUNTED=()
}
trap unmount_all EXIT

# The chroot's root is made a mount point of its own (a bind mount onto
# itself): unshare --mount, which test/dns_cancel.sh uses, needs one.
mount_chroot() {
    local dir="$1" m
    if ! mountpoint -q "$dir"; then
        as_root mount --bind "$dir" "$dir" && as_root mount --make-private "$dir" || return 1
    fi
    MOUNTED+=("$dir")
    for m in proc sys dev; do
        mountpoint -q "$dir/$m" && continue
        case "$m" in
            proc) as_root mount -t proc proc "$dir/proc" ;;
            *) as_root mount --rbind "/$m" "$dir/$m" && as_root mount --make-rslave "$dir/$m" ;;
        esac || return 1
    done
}

# Make (or reuse) the chroot of a release, ready for suite.sh to install
# packages into.
prepare_chroot() {
    local release="$1" dir="$MATRIX_DIR/$1" mirror
    if [ ! -f "$dir/.oprec-matrix-ready" ]; then
        mirror="$(debian_mirror)" || {
            echo "no Debian mirror for $HOST_RELEASE found in /etc/apt/sources.list.d/ or /etc/apt/sources.list" >&2
            return 1
        }
        if ! command -v debootstrap >/dev/null; then
            echo "== installing: debootstrap"
            as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
                as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null ||
                return 1
        fi
        echo "== debootstrap $release (minbase) into $dir"
        as_root rm -rf "$dir"
        as_root mkdir -p "$MATRIX_DIR"
        as_root debootstrap --variant=minbase "$release" "$dir" "$mirror" >"$MATRIX_DIR/$release.debootstrap.log" 2>&1 || {
            tail -n 20 "$MATRIX_DIR/$release.debootstrap.log" >&2
            return 1
        }
        # The mirror may serve a snapshot whose Release files have expired.
        echo 'Acquire::Check-Valid-Until "false";' | as_root tee "$dir/etc/apt/apt.conf.d/99oprec-matrix" >/dev/null
        # No service starts inside the chroot; the tests make their clusters.
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$dir/usr/sbin/policy-rc.d" >/dev/null
        as_root chmod 755 "$dir/usr/sbin/policy-rc.d"
        as_root mkdir -p "$dir/etc/postgresql-common/createcluster.d"
        echo "create_main_cluster = false" | as_root tee "$dir/etc/postgresql-common/createcluster.d/oprec_fdw.conf" >/dev/null
        as_root touch "$dir/.oprec-matrix-ready"
    fi
    as_root cp /etc/resolv.conf "$dir/etc/resolv.conf"
    as_root cp /etc/hosts "$dir/etc/hosts"
    mount_chroot "$dir"
}

# Run the suite for one version; its output goes to the terminal and to
# $ROOT/test/matrix-logs/pgN.log.
run_version() {
    local v="$1" release log dir
    release="$(release_of "$v")"
    log="$LOGS/pg$v.log"
    if [ -z "$release" ]; then
        echo "pg$v: no Debian release of the matrix ships PostgreSQL $v" | tee "$log"
        return 1
    fi
    if [ "$release" = "$HOST_RELEASE" ]; then
        echo "==== PostgreSQL $v on the host ($release)"
        OPREC_PG_VERSION="$v" bash "$ROOT/test/suite.sh" 2>&1 | tee "$log.tmp"
        mv "$log.tmp" "$log"
        return 0
    fi

    echo "==== PostgreSQL $v in a $release chroot"
    prepare_chroot "$release" >"$log.tmp" 2>&1 || {
        cat "$log.tmp"
        echo "pg$v: 0 passed, 1 failed (the $release chroot could not be made)" | tee -a "$log.tmp"
        mv "$log.tmp" "$log"
        return 1
    }
    dir="$MATRIX_DIR/$release"
    # a copy of this work tree (tracked and new files, not ignored ones)
    as_root rm -rf "$dir/opt/oprec_fdw"
    as_root mkdir -p "$dir/opt/oprec_fdw"
    (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard |
        xargs -0 -r stat --printf '%n\0' 2>/dev/null |
        tar --null -T - -cf -) | as_root tar -xf - -C "$dir/opt/oprec_fdw"
    as_root chroot "$dir" /usr/bin/env -i HOME=/root TERM=dumb \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        CI="${CI:-}" OPREC_PG_VERSION="$v" \
        bash /opt/oprec_fdw/test/suite.sh 2>&1 | tee -a "$log.tmp"
    mv "$log.tmp" "$log"
    rm -rf "$LOGS/pg$v"
    cp -r "$dir/opt/oprec_fdw/test/results" "$LOGS/pg$v" 2>/dev/null || true
    unmount_all
}

main() {
    local summary=() failed_any=0 v started minutes line
    mkdir -p "$LOGS"
    for v in "${VERSIONS[@]}"; do
        started=$(date +%s)
        run_version "$v"
        minutes=$(awk -v s=$(($(date +%s) - started)) 'BEGIN { printf "%.1f", s / 60 }')
        line="$(grep -E "^pg$v: [0-9]+ passed, [0-9]+ failed" "$LOGS/pg$v.log" | tail -n 1)"
        [ -n "$line" ] || line="pg$v: 0 passed, 1 failed (the suite did not finish)"
        if ! grep -qE "^pg$v: [1-9][0-9]* passed, 0 failed" <<<"$line"; then
            failed_any=1
        fi
        summary+=("$line ($minutes min)")
    done
    echo "==== matrix"
    printf '%s\n' "${summary[@]}" | tee "$LOGS/summary.txt"
    return "$failed_any"
}

# main runs from this line, read whole before it starts: editing the file
# meanwhile is harmless
main; exit $?
