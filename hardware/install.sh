#!/usr/bin/env bash
# Antrean: install or update the kiosk and the edge agent on Raspberry Pi OS
# (Bookworm). Run from a checkout of the project, as root:
#     sudo hardware/install.sh              # install / update
#     hardware/install.sh --dry-run         # print every action, change nothing
#     hardware/install.sh --root /tmp/r --no-venv --python .venv/bin/python
#                                           # into a scratch root (tests)
# Idempotent: a second run changes nothing (the venv is rebuilt only when the
# source changed). In a chroot or an image build, where systemd and udev are
# not running, units are enabled and rules installed for the next boot.
# Secrets are made on this device when absent and never overwritten; none is
# shipped in the project. The ticket signing key is made by the kiosk itself
# at its first start.
# Walk-through: docs/install.md.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=""
DRY_RUN=0
MAKE_VENV=1
PYTHON=""
USER_NAME=antrean
PREFIX=/opt/antrean
APT_PACKAGES=(python3-venv python3-dev mosquitto mosquitto-clients openssl)
# Only in Raspberry Pi OS's own repository (archive.raspberrypi.com), not in
# Debian: installed when apt offers them, skipped with a "!" line otherwise.
PI_PACKAGES=(python3-lgpio)
KIOSK_GROUPS=(lp dialout gpio video)
UNITS=(antrean-kiosk.service antrean-agent.service)

usage() {
    cat <<'USAGE'
usage: install.sh [--dry-run] [--root DIR] [--no-venv] [--python PY]
  --dry-run    print every action, change nothing
  --root DIR   install into DIR instead of / (no apt, no user, no chown,
               no systemctl/udevadm); for testing
  --no-venv    do not create or update the venv in /opt/antrean/venv
  --python PY  the Python with antrean installed, used to hash the staff
               password (default: <root>/opt/antrean/venv/bin/python)
USAGE
}

while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --root) [ $# -ge 2 ] || { usage >&2; exit 2; }; ROOT=$(cd "$2" && pwd); shift ;;
        --no-venv) MAKE_VENV=0 ;;
        --python) [ $# -ge 2 ] || { usage >&2; exit 2; }; PYTHON=$2; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

ETC="$ROOT/etc/antrean"
DATA="$ROOT/var/lib/antrean"
OPT="$ROOT$PREFIX"
CONFIG="$ETC/kiosk.toml"
MQTT_SECRET="$ETC/mqtt.secret"
[ -n "$PYTHON" ] || PYTHON="$OPT/venv/bin/python"

if [ -z "$ROOT" ] && [ "$DRY_RUN" = 0 ] && [ "$(id -u)" != 0 ]; then
    echo "run as root (sudo), or use --dry-run / --root DIR" >&2
    exit 1
fi

# Print an action; run it unless --dry-run.
run() {
    echo "+ $*"
    if [ "$DRY_RUN" = 0 ]; then "$@"; fi
}

# Print that something is already as wanted.
keep() {
    echo "= $*"
}

# Only on the real system (not --root): user accounts, ownership, services.
system() {
    [ -z "$ROOT" ]
}

# Install file $1 as $2 with mode $3 only when its content or mode differs;
# set changed=1 when it did (callers reload only what changed).
changed=0
put() {
    local src=$1 dest=$2 mode=$3
    if [ -f "$dest" ] && cmp -s "$src" "$dest" && [ "$(stat -c %a "$dest")" = "${mode#0}" ]; then
        keep "$dest"
    else
        run install -D -m "$mode" "$src" "$dest"
        changed=1
    fi
}

# Package $1 is installed.
installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

# apt has a version of package $1 to install (Pi-only packages have none on
# plain Debian).
available() {
    local version
    version=$(apt-cache policy "$1" 2>/dev/null | awk '$1 == "Candidate:" { print $2 }')
    [ -n "$version" ] && [ "$version" != "(none)" ]
}

# systemd is PID 1 here (sd_booted()'s test). Not in a chroot or an image
# being built: there units can be enabled but not reloaded or started.
systemd_running() {
    [ -d /run/systemd/system ]
}

# systemd has older copies of our units loaded than those on disk (also after
# a run that stopped between installing them and the daemon-reload).
units_stale() {
    local unit
    for unit in "${UNITS[@]}"; do
        [ "$(systemctl show --property=NeedDaemonReload --value "$unit")" = yes ] && return 0
    done
    return 1
}

# A fingerprint of the project's source. pip rebuilds and reinstalls a local
# directory every time, so the venv is only updated when this changes.
source_stamp() {
    (cd "$SRC" && find . \( -name .git -o -name .venv -o -name __pycache__ -o -name build -o -name '*.egg-info' \
            -o -name demo-data -o -name .pytest_cache -o -name .hypothesis -o -name .mypy_cache \) -prune \
            -o -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
}

# Make directory $1 with mode $2 (and owner $3 on the real system).
dir() {
    local path=$1 mode=$2 owner=${3:-}
    if [ -d "$path" ] && [ "$(stat -c %a "$path")" = "${mode#0}" ]; then
        keep "$path/"
    else
        run install -d -m "$mode" "$path"
    fi
    if system && [ -n "$owner" ]; then
        if [ -d "$path" ] && [ "$(stat -c %U:%G "$path")" = "$owner" ]; then :; else run chown "$owner" "$path"; fi
    fi
}

# Give file $1 owner $2 on the real system.
own() {
    if system; then run chown "$2" "$1"; fi
}

echo "== packages"
if system; then
    missing=()
    for pkg in "${APT_PACKAGES[@]}"; do
        installed "$pkg" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        run apt-get update
    fi
    for pkg in "${PI_PACKAGES[@]}"; do
        if installed "$pkg"; then
            :
        elif available "$pkg"; then
            missing+=("$pkg")
        else
            echo "! $pkg is not in this system's apt sources (Raspberry Pi OS has it); skipped, pip installs lgpio instead"
        fi
    done
    if [ ${#missing[@]} -gt 0 ]; then
        # No questions: the packages' defaults are what the kiosk wants.
        run env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
    else
        keep "apt packages: ${APT_PACKAGES[*]}"
    fi
else
    keep "apt packages skipped (--root)"
fi

echo "== user $USER_NAME"
if system; then
    if id "$USER_NAME" >/dev/null 2>&1; then
        keep "user $USER_NAME"
    else
        run useradd --system --user-group --home-dir /var/lib/antrean --shell /usr/sbin/nologin "$USER_NAME"
    fi
    for group in "${KIOSK_GROUPS[@]}"; do
        if ! getent group "$group" >/dev/null; then
            echo "! group $group does not exist here; skipped"
        elif id -nG "$USER_NAME" 2>/dev/null | tr ' ' '\n' | grep -qx "$group"; then
            keep "$USER_NAME in $group"
        else
            run usermod -a -G "$group" "$USER_NAME"
        fi
    done
else
    keep "user skipped (--root)"
fi

echo "== directories"
dir "$ETC" 0750 "root:$USER_NAME"
dir "$DATA" 0750 "$USER_NAME:$USER_NAME"
dir "$OPT" 0755
dir "$OPT/bin" 0755

echo "== program"
if [ "$MAKE_VENV" = 1 ]; then
    if [ -x "$OPT/venv/bin/python" ]; then
        keep "$OPT/venv"
    else
        # System site packages: python3-lgpio from apt drives the GPIO pins.
        run python3 -m venv --system-site-packages "$OPT/venv"
    fi
    stamp=$(source_stamp)
    if [ -f "$OPT/venv/.antrean-source" ] && [ "$(cat "$OPT/venv/.antrean-source")" = "$stamp" ]; then
        keep "antrean in $OPT/venv (source unchanged)"
    else
        # pip's full log is kept: it says which packages had no wheel for this
        # machine and were compiled here (on a Pi that takes python3-dev and minutes).
        if [ "$DRY_RUN" = 0 ]; then rm -f "$OPT/venv/pip-install.log"; fi
        run "$OPT/venv/bin/pip" install --quiet --disable-pip-version-check --log "$OPT/venv/pip-install.log" \
            "${SRC}[pi]"
        if [ "$DRY_RUN" = 0 ]; then
            echo "$stamp" > "$OPT/venv/.antrean-source"
            built=$(grep -o 'Building wheel for [^ ]*' "$OPT/venv/pip-install.log" | cut -d' ' -f4 \
                | grep -vx antrean | sort -u | tr '\n' ' ' || true)
            if [ -n "$built" ]; then echo "! built from source here (no wheel for this machine): ${built% }"; fi
        fi
    fi
else
    keep "venv skipped (--no-venv)"
fi
put "$SRC/hardware/lobby-screen/antrean-lobby-screen" "$OPT/bin/antrean-lobby-screen" 0755
for doc in "$SRC"/docs/*.md; do
    put "$doc" "$OPT/docs/$(basename "$doc")" 0644
done

echo "== udev rules and systemd units"
changed=0
put "$SRC/hardware/udev/60-antrean.rules" "$ROOT/etc/udev/rules.d/60-antrean.rules" 0644
rules_changed=$changed
changed=0
for unit in "${UNITS[@]}"; do
    put "$SRC/hardware/systemd/$unit" "$ROOT/etc/systemd/system/$unit" 0644
done
units_changed=$changed

echo "== configuration"
if [ -e "$CONFIG" ]; then
    keep "$CONFIG (kept as it is)"
else
    run install -m 0640 "$SRC/hardware/kiosk.example.toml" "$CONFIG"
    own "$CONFIG" "root:$USER_NAME"
fi

echo "== secrets (made here, never overwritten)"
if [ -e "$MQTT_SECRET" ]; then
    keep "$MQTT_SECRET (kept)"
elif [ "$DRY_RUN" = 1 ]; then
    echo "+ openssl rand -base64 24 > $MQTT_SECRET (mode 0600)"
else
    echo "+ openssl rand -base64 24 > $MQTT_SECRET (mode 0600)"
    (umask 077 && openssl rand -base64 24 > "$MQTT_SECRET.new")
    chmod 0600 "$MQTT_SECRET.new"
    mv "$MQTT_SECRET.new" "$MQTT_SECRET"
    own "$MQTT_SECRET" "$USER_NAME:$USER_NAME"
    echo "  register it on the site broker (the username is <office id>-<kiosk id>):"
    echo "  sudo mosquitto_passwd -b /etc/mosquitto/antrean.passwd <office>-<kiosk> \"\$(sudo cat /etc/antrean/mqtt.secret)\""
fi

# The staff password: only while [lobby] staff_password_hash is still "".
EMPTY_HASH='staff_password_hash = ""'
if [ -e "$CONFIG" ] && ! grep -q "^$EMPTY_HASH" "$CONFIG"; then
    keep "staff password hash (already set in $CONFIG)"
elif [ "$DRY_RUN" = 1 ]; then
    echo "+ generate a staff password, hash it with antrean-lobby hash-password, set staff_password_hash in $CONFIG"
else
    echo "+ generate a staff password, hash it with antrean-lobby hash-password, set staff_password_hash in $CONFIG"
    password=$(openssl rand -base64 18 | tr -d '/+=' | cut -c1-16)
    hash=$(printf '%s\n' "$password" | "$PYTHON" -m lobby hash-password)
    (umask 077 && HASH="$hash" LINE="$EMPTY_HASH" awk '
        !done && index($0, ENVIRON["LINE"]) == 1 { print "staff_password_hash = \"" ENVIRON["HASH"] "\""; done = 1; next }
        { print }' "$CONFIG" > "$CONFIG.new")
    cat "$CONFIG.new" > "$CONFIG"   # keeps the file's owner and mode
    rm -f "$CONFIG.new"
    echo "  ============================================================"
    echo "  STAFF PASSWORD (shown only now; write it down): $password"
    echo "  ============================================================"
fi

echo "== services"
if system; then
    if ! command -v systemctl >/dev/null; then
        echo "! systemctl not found (not a systemd system): units installed, not enabled"
    else
        if ! systemd_running; then
            # systemctl enable works offline (it only makes the wants symlinks).
            echo "! systemd is not running here (chroot or image build): no daemon-reload; units start at boot"
        elif [ "$units_changed" = 1 ] || units_stale; then
            run systemctl daemon-reload
        else
            keep "systemd units unchanged"
        fi
        for unit in "${UNITS[@]}"; do
            if systemctl is-enabled -q "$unit" 2>/dev/null; then
                keep "$unit enabled"
            else
                run systemctl enable "$unit"
            fi
        done
    fi
    if ! command -v udevadm >/dev/null; then
        echo "! udevadm not found: rules installed, not loaded"
    elif [ ! -S /run/udev/control ]; then
        echo "! udev is not running here (chroot or image build): rules load at boot"
    elif [ "$rules_changed" = 1 ]; then
        run udevadm control --reload
        run udevadm trigger --subsystem-match=tty --subsystem-match=usbmisc --subsystem-match=usb
    else
        keep "udev rules unchanged"
    fi
    echo "next: edit $CONFIG, then sudo -u $USER_NAME $PREFIX/venv/bin/kiosk check-config $CONFIG and"
    echo "      sudo systemctl restart antrean-kiosk antrean-agent"
else
    keep "systemctl and udevadm skipped (--root)"
fi
