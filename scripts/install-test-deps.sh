#!/usr/bin/env bash
# Installs the system packages the test suite needs on a fresh Debian 12 machine. Run as root;
# idempotent and non-interactive (apt is skipped when everything is already installed).
#
#   postfix  The SMTP probe tests (crates/mailaudit-net/tests/it/postfix.rs) start private
#            Postfix instances on 127.0.0.1 from a temporary directory (mailaudit-lab's
#            `postfix` module). The package is installed with debconf's "No configuration",
#            so nothing is configured system-wide, and the system's own Postfix is never
#            started: this script leaves it stopped.
#   postgresql  The store tests (crates/mailaudit-store/tests/pg.rs) run initdb and pg_ctl from
#            /usr/lib/postgresql/*/bin into a temporary directory: a private cluster on
#            127.0.0.1 and an ephemeral port, as the postgres user, removed when the tests end.
#            They never use the system cluster that the package creates: this script leaves
#            it stopped.
#   chromium chromium-driver  The portal's browser tests (crates/mailaudit-portal/tests/browser.rs)
#            start /usr/bin/chromedriver on an ephemeral loopback port, which runs a headless
#            /usr/bin/chromium with a fresh temporary profile and the flags that keep it off
#            the network (--disable-background-networking, --disable-component-update, ...).
#   dovecot-imapd  The IMAP tests (crates/mailaudit-net/tests/it/imap.rs and the `reports fetch`
#            CLI tests) start private Dovecot instances on 127.0.0.1 from a temporary directory
#            (mailaudit-lab's `dovecot` module, `dovecot -c FILE`); they never read /etc/dovecot.
#            The system's own Dovecot is never used: this script leaves it stopped and disabled.
#   poppler-utils  The customer report's PDF test (crates/mailaudit/tests/cli/report.rs) reads
#            the PDF that `mailaudit report --format pdf` printed with Chromium back to text
#            with `pdftotext`, to check its figures.
#
# Later test suites add their packages to PACKAGES below.
set -euo pipefail

PACKAGES=(postfix postgresql dovecot-imapd chromium chromium-driver poppler-utils)

if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-deps.sh must run as root (it calls apt-get)" >&2
    exit 2
fi

installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

missing=()
for p in "${PACKAGES[@]}"; do
    installed "$p" || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
    echo "== installing test dependencies: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Postfix: install the programs only; no /etc/postfix/main.cf, no system-wide mail setup.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    # Keep maintainer scripts from starting any service while packages are installed
    # (Debian's policy-rc.d protocol: exit 101 = action forbidden). A policy already in place
    # (e.g. a container's) is left untouched.
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        trap 'rm -f "$policy"' EXIT
    fi
    # Package lists may be absent on a fresh machine: update once if the install cannot find them.
    if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
        apt-get update
        apt-get install -y --no-install-recommends "${missing[@]}"
    fi
fi

# Leave the system Postfix stopped: the tests run their own instances on ephemeral ports.
if [ -d /run/systemd/system ]; then
    systemctl stop postfix.service >/dev/null 2>&1 || true
fi
if [ -f /etc/postfix/main.cf ] && postfix status >/dev/null 2>&1; then
    postfix stop || true
fi

# Leave the system PostgreSQL cluster(s) stopped: the store tests start their own.
if [ -d /run/systemd/system ]; then
    systemctl stop postgresql.service >/dev/null 2>&1 || true
fi
if command -v pg_lsclusters >/dev/null; then
    pg_lsclusters --no-header 2>/dev/null | while read -r ver name _port status _rest; do
        if [ "$status" = online ]; then pg_ctlcluster "$ver" "$name" stop || true; fi
    done
fi

# Leave the system Dovecot stopped and disabled: the tests run their own instances.
if [ -d /run/systemd/system ]; then
    systemctl stop dovecot.service dovecot.socket >/dev/null 2>&1 || true
    systemctl disable dovecot.service dovecot.socket >/dev/null 2>&1 || true
elif command -v update-rc.d >/dev/null && [ -e /etc/init.d/dovecot ]; then
    update-rc.d dovecot disable >/dev/null 2>&1 || true
fi
if [ -f /run/dovecot/master.pid ] && command -v doveadm >/dev/null; then
    doveadm stop >/dev/null 2>&1 || true
fi

command -v postfix >/dev/null || { echo "postfix was not installed" >&2; exit 1; }
id postfix >/dev/null || { echo "the postfix user is missing after the install" >&2; exit 1; }
getent group postdrop >/dev/null || { echo "the postdrop group is missing" >&2; exit 1; }
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
for b in initdb pg_ctl postgres; do
    [ -x "$pg_bin/$b" ] || { echo "PostgreSQL's $b is missing under /usr/lib/postgresql/*/bin" >&2; exit 1; }
done
id postgres >/dev/null || { echo "the postgres user is missing after the install" >&2; exit 1; }
for b in /usr/bin/chromium /usr/bin/chromedriver; do
    [ -x "$b" ] || { echo "$b is missing after the install (packages chromium, chromium-driver)" >&2; exit 1; }
done
command -v pdftotext >/dev/null || { echo "pdftotext is missing after the install (package poppler-utils)" >&2; exit 1; }
command -v dovecot >/dev/null && command -v doveadm >/dev/null || { echo "dovecot was not installed" >&2; exit 1; }
for u in dovecot dovenull; do
    id "$u" >/dev/null || { echo "the $u user is missing after the install" >&2; exit 1; }
done
echo "== test dependencies present: ${PACKAGES[*]} (postfix $(postconf -d -h mail_version 2>/dev/null || echo '?'), $("$pg_bin/postgres" --version), dovecot $(dovecot --version))"
