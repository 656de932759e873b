#!/usr/bin/env bash
# Install or remove smscmd as a hardened systemd service on a gateway.
#
#   sudo hardware/install.sh install   [--prefix /opt/smscmd] [--dry-run]
#   sudo hardware/install.sh uninstall [--prefix /opt/smscmd] [--dry-run]
#
# install (idempotent: run it again to upgrade):
#   - system user and group `smscmd`, member of `dialout` (the serial ports)
#   - a virtualenv at PREFIX with this repository pip-installed into it, and the
#     command linked as /usr/local/bin/smscmd
#   - /etc/smscmd/agent.toml from hardware/agent.toml.example (an existing one is kept)
#   - /etc/systemd/system/smscmd.service and /etc/udev/rules.d/99-smscmd.rules
#   - systemctl daemon-reload, udevadm control --reload, udevadm trigger (tty)
# uninstall: stops and removes the unit, the udev rules, the virtualenv and the user;
#   keeps /var/lib/smscmd (the journal) and /etc/smscmd (the configuration).
#
# --dry-run prints every step ("+ command") without changing anything.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
PREFIX=/opt/smscmd
DRY_RUN=0
ACTION=""

SERVICE_USER=smscmd
CONFIG_DIR=/etc/smscmd
STATE_DIR=/var/lib/smscmd
UNIT_DEST=/etc/systemd/system/smscmd.service
RULES_DEST=/etc/udev/rules.d/99-smscmd.rules
UNIT_SRC="$HERE/systemd/smscmd.service"
RULES_SRC="$HERE/udev/99-smscmd.rules"
EXAMPLE_SRC="$HERE/agent.toml.example"
LINK=/usr/local/bin/smscmd

usage() {
    echo "usage: $0 install|uninstall [--prefix DIR] [--dry-run]" >&2
    exit 2
}

say() {
    echo "==> $*"
}

# Run a command, or only print it under --dry-run.
run() {
    echo "+ $*"
    if [[ $DRY_RUN -eq 0 ]]; then
        "$@"
    fi
}

parse_args() {
    [[ $# -ge 1 ]] || usage
    ACTION="$1"
    shift
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --prefix)
                [[ $# -ge 2 ]] || usage
                PREFIX="$2"
                shift 2
                ;;
            --prefix=*)
                PREFIX="${1#--prefix=}"
                shift
                ;;
            --dry-run)
                DRY_RUN=1
                shift
                ;;
            -h | --help)
                usage
                ;;
            *)
                echo "unknown argument: $1" >&2
                usage
                ;;
        esac
    done
    case "$ACTION" in
        install | uninstall) ;;
        *) usage ;;
    esac
    [[ "$PREFIX" == /* ]] || { echo "--prefix must be an absolute path" >&2; exit 2; }
    PREFIX="${PREFIX%/}"
    [[ -n "$PREFIX" ]] || { echo "--prefix must not be /" >&2; exit 2; }
}

require_root() {
    if [[ $DRY_RUN -eq 0 && $(id -u) -ne 0 ]]; then
        echo "run as root (sudo $0 $ACTION ...), or add --dry-run" >&2
        exit 1
    fi
}

have() {
    command -v "$1" >/dev/null 2>&1
}

do_install() {
    for file in "$UNIT_SRC" "$RULES_SRC" "$EXAMPLE_SRC" "$REPO/pyproject.toml"; do
        [[ -f "$file" ]] || { echo "missing $file" >&2; exit 1; }
    done
    if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "smscmd needs python3 >= 3.11 (with the venv module)" >&2
        exit 1
    fi

    say "user $SERVICE_USER (groups: $SERVICE_USER, dialout)"
    if getent group dialout >/dev/null; then :; else run groupadd --system dialout; fi
    if getent passwd "$SERVICE_USER" >/dev/null; then
        run usermod --append --groups dialout "$SERVICE_USER"
    else
        run useradd --system --user-group --groups dialout \
            --home-dir "$STATE_DIR" --no-create-home \
            --shell /usr/sbin/nologin --comment "smscmd agent" "$SERVICE_USER"
    fi

    say "virtualenv $PREFIX with $REPO"
    if [[ ! -x "$PREFIX/bin/python" ]]; then
        run python3 -m venv "$PREFIX"
    fi
    run "$PREFIX/bin/pip" install --quiet --upgrade "$REPO"
    run ln -sfn "$PREFIX/bin/smscmd" "$LINK"

    say "configuration $CONFIG_DIR/agent.toml"
    run install -d -m 0750 -o root -g "$SERVICE_USER" "$CONFIG_DIR"
    if [[ -e "$CONFIG_DIR/agent.toml" ]]; then
        echo "    keeping the existing $CONFIG_DIR/agent.toml"
    else
        run install -m 0640 -o root -g "$SERVICE_USER" "$EXAMPLE_SRC" "$CONFIG_DIR/agent.toml"
        echo "    edit $CONFIG_DIR/agent.toml (at least [agent] port) before starting"
    fi

    say "systemd unit $UNIT_DEST"
    if [[ "$PREFIX" == /opt/smscmd ]]; then
        run install -m 0644 "$UNIT_SRC" "$UNIT_DEST"
    else
        echo "+ sed 's#/opt/smscmd/#$PREFIX/#g' $UNIT_SRC > $UNIT_DEST"
        if [[ $DRY_RUN -eq 0 ]]; then
            sed "s#/opt/smscmd/#$PREFIX/#g" "$UNIT_SRC" >"$UNIT_DEST.tmp"
            chmod 0644 "$UNIT_DEST.tmp"
            mv -f "$UNIT_DEST.tmp" "$UNIT_DEST"
        fi
    fi

    say "udev rules $RULES_DEST"
    run install -m 0644 "$RULES_SRC" "$RULES_DEST"

    say "reload systemd and udev"
    if have systemctl; then run systemctl daemon-reload; else echo "    (no systemctl)"; fi
    if have udevadm; then
        run udevadm control --reload
        run udevadm trigger --subsystem-match=tty --action=add
    else
        echo "    (no udevadm)"
    fi

    say "installed. Next:"
    echo "    sudoedit $CONFIG_DIR/agent.toml"
    echo "    sudo systemctl enable --now smscmd"
    echo "    systemctl status smscmd; journalctl -u smscmd -f; sudo smscmd status --config $CONFIG_DIR/agent.toml"
}

do_uninstall() {
    say "systemd unit $UNIT_DEST"
    if [[ -e "$UNIT_DEST" ]]; then
        if have systemctl; then
            run systemctl disable --now smscmd.service || true
        fi
        run rm -f "$UNIT_DEST"
    else
        echo "    not installed"
    fi
    if have systemctl; then run systemctl daemon-reload || true; fi

    say "udev rules $RULES_DEST"
    if [[ -e "$RULES_DEST" ]]; then
        run rm -f "$RULES_DEST"
        if have udevadm; then run udevadm control --reload || true; fi
    else
        echo "    not installed"
    fi

    say "virtualenv $PREFIX"
    if [[ -L "$LINK" && "$(readlink "$LINK")" == "$PREFIX/bin/smscmd" ]]; then
        run rm -f "$LINK"
    fi
    if [[ -f "$PREFIX/pyvenv.cfg" ]]; then
        run rm -rf -- "$PREFIX"
    elif [[ -e "$PREFIX" ]]; then
        echo "    $PREFIX is not a virtualenv (no pyvenv.cfg): left alone"
    else
        echo "    not installed"
    fi

    say "user $SERVICE_USER"
    if getent passwd "$SERVICE_USER" >/dev/null; then
        run userdel "$SERVICE_USER"
    else
        echo "    no such user"
    fi
    if getent group "$SERVICE_USER" >/dev/null; then
        run groupdel "$SERVICE_USER" || true
    fi

    say "kept: $STATE_DIR (the journal) and $CONFIG_DIR (the configuration);" \
        "remove them by hand if they are no longer needed"
}

main() {
    parse_args "$@"
    require_root
    if [[ $DRY_RUN -eq 1 ]]; then
        say "dry run: nothing is changed"
    fi
    case "$ACTION" in
        install) do_install ;;
        uninstall) do_uninstall ;;
    esac
}

main "$@"
