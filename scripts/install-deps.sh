#!/usr/bin/env bash
# Installs the system packages edgewatch's demo and tests need, when they are missing.
#
#   scripts/install-deps.sh postgres      PostgreSQL server binaries (initdb, pg_ctl, postgres)
#   scripts/install-deps.sh pdns          PowerDNS auth + bind backend + recursor, dig, iproute2
#   scripts/install-deps.sh lab           network-namespace lab: iproute2, nftables, fping, and mtr-tiny
#                                         (probers/tests/trace_netns.rs and tests/trace_lab_netns.rs compare with mtr;
#                                         tests/ping_cli.rs drops echo requests with nftables in a namespace)
#   scripts/install-deps.sh nagios        nagios4 and icinga2 binaries, to check deploy/nagios, deploy/icinga2
#   scripts/install-deps.sh dot           graphviz alone: `dot` draws the HTML report's picture (`make demo`
#                                         suggests `edgewatch report --format html`)
#   scripts/install-deps.sh report        graphviz (dot, the report's picture) and chromium (headless, to
#                                         screenshot the HTML report in tests/report_render.rs), and
#                                         chromium-driver (WebDriver: the web UI in tests/web_ui_browser.rs)
#   scripts/install-deps.sh tail          logrotate, to rotate a log under `dns tail` the way a
#                                         Debian machine does (tests/dns_tail_rotation.rs)
#   scripts/install-deps.sh deploy        systemd-analyze (package systemd: `systemd-analyze verify` of
#                                         deploy/systemd in tests/systemd_units.rs) and man-db (`man -l`
#                                         of `edgewatch man` in tests/cli_meta.rs)
#   scripts/install-deps.sh tls           curl (reads the API over HTTPS with --cacert) and strace (sees that a
#                                         refusing agent connects nowhere) for tests/tls_serve.rs
#   scripts/install-deps.sh pgbouncer     Debian's pgbouncer (tests/pgbouncer.rs runs every command through it, in
#                                         transaction pooling) and pg_basebackup (postgresql-client: the
#                                         streaming standby of tests/standby.rs); the service is not started
#   scripts/install-deps.sh bench         the path-tracing benchmark (`BENCH_ONLY=trace make bench`):
#                                         iproute2 for its namespaces, and scamper, the tracer it is
#                                         measured beside; and fping, which `edgewatch ping` is measured
#                                         beside (`BENCH_ONLY=ping make bench`)
#
# Uses apt-get (Debian/Ubuntu) as root, or through sudo when that needs no password.
# Without either, prints what to install and fails. Never creates or starts a system
# PostgreSQL cluster: edgewatch runs its own.
set -euo pipefail

need=()       # packages to install
optional=0    # 1 when every missing package is only for root-only tests (pdns)
required=0

have_pg_server() {
    command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 && return 0
    if command -v pg_config >/dev/null 2>&1; then
        local bindir
        bindir=$(pg_config --bindir 2>/dev/null || true)
        [ -x "$bindir/initdb" ] && [ -x "$bindir/pg_ctl" ] && return 0
    fi
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && return 0
    [ -n "${PG_BINDIR:-}" ] && [ -x "$PG_BINDIR/initdb" ] && return 0
    return 1
}

for group in "$@"; do
    case "$group" in
        postgres) have_pg_server || { need+=(postgresql-common postgresql); required=1; } ;;
        pdns)
            command -v pdns_server >/dev/null 2>&1 || [ -x /usr/sbin/pdns_server ] || need+=(pdns-server)
            [ -e /usr/lib/x86_64-linux-gnu/pdns/libbindbackend.so ] || compgen -G '/usr/lib/*/pdns/libbindbackend.so' >/dev/null || need+=(pdns-backend-bind)
            command -v pdns_recursor >/dev/null 2>&1 || [ -x /usr/sbin/pdns_recursor ] || need+=(pdns-recursor)
            command -v dig >/dev/null 2>&1 || need+=(dnsutils)
            command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || need+=(iproute2)
            command -v unshare >/dev/null 2>&1 || need+=(util-linux)
            optional=1
            ;;
        lab)
            command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || need+=(iproute2)
            command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || need+=(nftables)
            command -v fping >/dev/null 2>&1 || [ -x /usr/bin/fping ] || need+=(fping)
            command -v mtr >/dev/null 2>&1 || [ -x /usr/bin/mtr ] || need+=(mtr-tiny)
            optional=1
            ;;
        nagios)
            # To check deploy/: nagios4-core has the nagios4 binary without the web front
            # end (nagios4 would add Apache and the CGIs), icinga2-bin the icinga2 binary
            # without the service. No daemon (nagios4, exim4) may start: see policy-rc.d.
            command -v nagios4 >/dev/null 2>&1 || [ -x /usr/sbin/nagios4 ] || need+=(nagios4-core)
            command -v icinga2 >/dev/null 2>&1 || [ -x /usr/sbin/icinga2 ] || need+=(icinga2-bin)
            optional=1
            ;;
        dot)
            command -v dot >/dev/null 2>&1 || need+=(graphviz)
            optional=1
            ;;
        report)
            # `dot -Tsvg` draws the service graph; headless Chromium opens the HTML report in
            # the test. Without recommends they bring no fonts: DejaVu for Latin, Greek and
            # Cyrillic; Droid Sans Fallback (CJK) and Symbola (emoji), 3 MB together, so
            # such names in the CMDB are not boxes in the screenshot.
            command -v dot >/dev/null 2>&1 || need+=(graphviz)
            command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need+=(chromium)
            # WebDriver for the web UI's browser test (tests/web_ui_browser.rs).
            command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
            compgen -G '/usr/share/fonts/truetype/dejavu/DejaVuSans*.ttf' >/dev/null || need+=(fonts-dejavu-core)
            [ -e /usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf ] || need+=(fonts-droid-fallback)
            compgen -G '/usr/share/fonts/*/*/Symbola*' >/dev/null || need+=(fonts-symbola)
            optional=1
            ;;
        deploy)
            command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
            command -v man >/dev/null 2>&1 || need+=(man-db)
            optional=1
            ;;
        tail)
            # Debian's own logrotate (create, copytruncate, dateext, compress) rotates the
            # log under `dns tail` in tests/dns_tail_rotation.rs; without it that test skips.
            command -v logrotate >/dev/null 2>&1 || [ -x /usr/sbin/logrotate ] || need+=(logrotate)
            optional=1
            ;;
        tls)
            command -v curl >/dev/null 2>&1 || need+=(curl)
            command -v strace >/dev/null 2>&1 || need+=(strace)
            optional=1
            ;;
        pgbouncer)
            # The tests start their own pgbouncer in front of their own cluster; the packaged
            # service stays stopped (policy-rc.d below).
            command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || need+=(pgbouncer)
            optional=1
            ;;
        bench)
            # bench/run.sh's `trace` section: a routed chain of namespaces, and scamper
            # tracing the same destinations as edgewatch's tracer; its `ping` section: fping.
            command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || need+=(iproute2)
            command -v scamper >/dev/null 2>&1 || [ -x /usr/bin/scamper ] || need+=(scamper)
            command -v fping >/dev/null 2>&1 || [ -x /usr/bin/fping ] || need+=(fping)
            optional=1
            ;;
        *) echo "install-deps: unknown group '$group'" >&2; exit 2 ;;
    esac
done

[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
elif [ $required -eq 0 ]; then
    echo "note: not root, so not installing ${need[*]}: the tests that need them (and root) will skip" >&2
    exit 0
else
    echo "edgewatch needs these Debian/Ubuntu packages: ${need[*]}" >&2
    echo "install them as root:  apt-get install ${need[*]}" >&2
    echo "(or point PG_BINDIR at PostgreSQL's server binaries, or use --database-url)" >&2
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-deps: no apt-get here; install the PostgreSQL server binaries (${need[*]}) with your package manager" >&2
    exit 1
fi

echo "install-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
# postgresql-common first, told not to create (and start) the distribution's own cluster.
if printf '%s\n' "${need[@]}" | grep -qx postgresql-common; then
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends postgresql-common >/dev/null
    if [ -f /etc/postgresql-common/createcluster.conf ]; then
        "${SUDO[@]}" sed -i 's/^#\?\s*create_main_cluster\s*=.*/create_main_cluster = false/' \
            /etc/postgresql-common/createcluster.conf
    fi
fi
# Packaged daemons (pdns, pdns-recursor) must not be started as system services: the
# tests start their own, in private network namespaces.
no_start=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee /usr/sbin/policy-rc.d >/dev/null
    "${SUDO[@]}" chmod +x /usr/sbin/policy-rc.d
    no_start=1
fi
status=0
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null || status=$?
[ $no_start -eq 1 ] && "${SUDO[@]}" rm -f /usr/sbin/policy-rc.d
[ $status -eq 0 ] || { echo "install-deps: apt-get install ${need[*]} failed" >&2; exit $status; }
printf '%s\n' "${need[@]}" | grep -q postgresql || exit 0
have_pg_server || { echo "install-deps: PostgreSQL server binaries still not found" >&2; exit 1; }
