#!/usr/bin/env bash
# Install or remove smscmd as a hardened systemd service on a gateway, or build a
# wheelhouse for an offline install.
#
#   sudo hardware/install.sh install   [--prefix /opt/smscmd] [--python /usr/bin/python3]
#                                      [--wheelhouse DIR] [--root DIR] [--dry-run]
#   sudo hardware/install.sh uninstall [--prefix /opt/smscmd] [--root DIR] [--dry-run]
#        hardware/install.sh wheelhouse DIR [--python PATH]
#                                      [--platform TAG ...] [--python-version X.Y]
#
# install (idempotent: run it again to upgrade):
#   - system user and group `smscmd`, member of `dialout` (the serial ports)
#   - a virtualenv at PREFIX made by the system Python (/usr/bin/python3, >= 3.11, with
#     the venv module; --python another), this repository pip-installed into it, and
#     the command linked as /usr/local/bin/smscmd. --wheelhouse DIR installs from DIR
#     alone (pip --no-index --find-links DIR): no network is used.
#   - /etc/smscmd/agent.toml from hardware/agent.toml.example (an existing one is kept)
#   - /etc/systemd/system/smscmd.service and /etc/udev/rules.d/99-smscmd.rules
#   - systemctl daemon-reload, udevadm control --reload, udevadm trigger (tty)
# uninstall: stops and removes the unit, the udev rules, the virtualenv and the user;
#   keeps /var/lib/smscmd (the journal) and /etc/smscmd (the configuration).
# wheelhouse (on a connected machine): DIR gets the project's wheel, a wheel of every
#   runtime dependency and the build requirements of pyproject.toml [build-system],
#   for this machine or for the target named by --platform/--python-version
#   (e.g. --platform manylinux2014_aarch64 --python-version 3.11 for a 64-bit Pi).
#
# --dry-run prints every step ("+ command") without changing anything.
# --root DIR writes every file under DIR instead of / (for tests and inspection): no
#   user is created, nothing is chown'ed, systemd and udev are not told; the
#   virtualenv goes to DIR/PREFIX and names that path, so it runs there only (to build
#   an image, run install.sh inside the image's chroot instead).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
PREFIX=/opt/smscmd
PYTHON=/usr/bin/python3
DRY_RUN=0
ROOT=""
WHEELHOUSE=""
ACTION=""
TARGET=""
PLATFORMS=()
PYTHON_VERSION=""

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
    cat >&2 <<EOF
usage: $0 install   [--prefix DIR] [--python PATH] [--wheelhouse DIR] [--root DIR] [--dry-run]
       $0 uninstall [--prefix DIR] [--root DIR] [--dry-run]
       $0 wheelhouse DIR [--python PATH] [--platform TAG ...] [--python-version X.Y]
EOF
    exit 2
}

fail() {
    echo "install.sh: $*" >&2
    exit 1
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

# The path a file of the installed system has under --root.
dest() {
    echo "$ROOT$1"
}

parse_args() {
    [[ $# -ge 1 ]] || usage
    ACTION="$1"
    shift
    if [[ "$ACTION" == wheelhouse ]]; then
        [[ $# -ge 1 && "$1" != -* ]] || usage
        TARGET="$1"
        shift
    fi
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --prefix | --python | --wheelhouse | --root | --platform | --python-version)
                [[ $# -ge 2 ]] || usage
                set_option "$1" "$2"
                shift 2
                ;;
            --prefix=* | --python=* | --wheelhouse=* | --root=* | --platform=* | --python-version=*)
                set_option "${1%%=*}" "${1#*=}"
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
        install | uninstall)
            [[ ${#PLATFORMS[@]} -eq 0 && -z "$PYTHON_VERSION" ]] \
                || { echo "--platform and --python-version are options of wheelhouse" >&2; exit 2; }
            ;;
        wheelhouse)
            [[ -z "$WHEELHOUSE" && -z "$ROOT" ]] \
                || { echo "wheelhouse takes no --wheelhouse or --root" >&2; exit 2; }
            ;;
        *) usage ;;
    esac
    [[ "$PREFIX" == /* ]] || { echo "--prefix must be an absolute path" >&2; exit 2; }
    PREFIX="${PREFIX%/}"
    [[ -n "$PREFIX" ]] || { echo "--prefix must not be /" >&2; exit 2; }
    if [[ -n "$ROOT" ]]; then
        [[ "$ROOT" == /* ]] || { echo "--root must be an absolute path" >&2; exit 2; }
        ROOT="${ROOT%/}"
    fi
}

set_option() {
    case "$1" in
        --prefix) PREFIX="$2" ;;
        --python) PYTHON="$2" ;;
        --wheelhouse) WHEELHOUSE="$2" ;;
        --root) ROOT="$2" ;;
        --platform) PLATFORMS+=("$2") ;;
        --python-version) PYTHON_VERSION="$2" ;;
    esac
}

require_root() {
    if [[ $DRY_RUN -eq 0 && -z "$ROOT" && $(id -u) -ne 0 ]]; then
        echo "run as root (sudo $0 $ACTION ...), or add --dry-run" >&2
        exit 1
    fi
}

have() {
    command -v "$1" >/dev/null 2>&1
}

# The interpreter the virtualenv is made with: the distribution's Python by default
# (never whichever python3 is first on PATH: a pyenv or conda one may vanish later).
check_python() {
    [[ -x "$PYTHON" ]] || fail "no Python at $PYTHON (apt-get install python3 python3-venv, or --python PATH)"
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        fail "smscmd needs Python >= 3.11; $PYTHON is $("$PYTHON" -V 2>&1)" \
            "(Debian 12 / Raspberry Pi OS bookworm have 3.11; or --python PATH)"
    fi
    # Debian splits ensurepip (which `python3 -m venv` needs) into python3-venv.
    if ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
        fail "$PYTHON has no venv module: apt-get install python3-venv"
    fi
}

# "name>=1", "other" from pyproject.toml [build-system] requires (tomllib: Python >= 3.11).
build_requirements() {
    "$PYTHON" -c 'import sys, tomllib
with open(sys.argv[1], "rb") as f:
    print("\n".join(tomllib.load(f)["build-system"]["requires"]))' "$REPO/pyproject.toml"
}

# A copy of this checkout for pip to build from: a build in place would leave build/
# and *.egg-info (root-owned, under sudo) in the checkout.
copy_source() {
    run mkdir -p "$1"
    echo "+ tar -C $REPO -c . | tar -C $1 -x   (without .git, build, caches, virtualenvs)"
    if [[ $DRY_RUN -eq 0 ]]; then
        tar -C "$REPO" --exclude=./.git --exclude=./build --exclude=./dist \
            --exclude='*.egg-info' --exclude='./.venv*' --exclude=__pycache__ \
            --exclude='./.*_cache' --exclude=./.hypothesis -cf - . | tar -C "$1" -xf -
    fi
}

do_wheelhouse() {
    check_python
    [[ -f "$REPO/pyproject.toml" ]] || fail "missing $REPO/pyproject.toml"
    local target_opts=() requirements=() work wheel
    if [[ ${#PLATFORMS[@]} -gt 0 || -n "$PYTHON_VERSION" ]]; then
        # pip accepts a foreign target for binary wheels only.
        target_opts+=(--only-binary=:all:)
        for tag in "${PLATFORMS[@]}"; do target_opts+=(--platform "$tag"); done
        if [[ -n "$PYTHON_VERSION" ]]; then
            target_opts+=(--python-version "$PYTHON_VERSION" --implementation cp)
        fi
    fi
    mapfile -t requirements < <(build_requirements)
    [[ ${#requirements[@]} -gt 0 ]] || fail "no [build-system] requires in $REPO/pyproject.toml"

    work="$(mktemp -d)"
    # shellcheck disable=SC2064  # expand now: $work is local
    trap "rm -rf -- '$work'" EXIT
    say "pip of $PYTHON ($("$PYTHON" -V 2>&1)) in a scratch virtualenv"
    run "$PYTHON" -m venv "$work/venv"
    local pip=("$work/venv/bin/python" -m pip --disable-pip-version-check)
    run mkdir -p "$TARGET"

    say "the project's wheel"
    copy_source "$work/source"
    run "${pip[@]}" wheel --quiet --no-deps --wheel-dir "$work/project" "$work/source"
    if [[ $DRY_RUN -eq 0 ]]; then
        wheel="$(find "$work/project" -name 'smscmd-*.whl' -print -quit)"
        [[ -n "$wheel" ]] || fail "pip wheel made no smscmd wheel"
        run cp -f "$wheel" "$TARGET/"
    else
        wheel="$work/project/smscmd-VERSION-py3-none-any.whl"
    fi

    say "build requirements: ${requirements[*]}"
    # Needed offline: `install --wheelhouse` builds this checkout, in an isolated build
    # environment that pip fills from the wheelhouse.
    run "${pip[@]}" download --quiet --dest "$TARGET" --only-binary=:all: \
        ${PYTHON_VERSION:+--python-version "$PYTHON_VERSION"} "${requirements[@]}"

    say "runtime dependencies${PLATFORMS[*]:+ for ${PLATFORMS[*]}}${PYTHON_VERSION:+ (Python $PYTHON_VERSION)}"
    if [[ ${#target_opts[@]} -gt 0 ]]; then
        run "${pip[@]}" download --quiet --dest "$TARGET" "${target_opts[@]}" "$wheel"
    else
        # For this machine: wheels, and a wheel built here for a dependency that has
        # only a source release.
        run "${pip[@]}" wheel --quiet --wheel-dir "$TARGET" "$wheel"
    fi
    say "wheelhouse $TARGET: copy it to the gateway with this checkout, then"
    echo "    sudo hardware/install.sh install --wheelhouse $TARGET"
}

do_install() {
    for file in "$UNIT_SRC" "$RULES_SRC" "$EXAMPLE_SRC" "$REPO/pyproject.toml"; do
        [[ -f "$file" ]] || fail "missing $file"
    done
    if [[ -n "$WHEELHOUSE" ]]; then
        [[ -d "$WHEELHOUSE" ]] || fail "no wheelhouse directory $WHEELHOUSE"
        WHEELHOUSE="$(cd "$WHEELHOUSE" && pwd)"
    fi
    check_python
    local venv
    venv="$(dest "$PREFIX")"
    local owner=(-o root -g "$SERVICE_USER")
    [[ -z "$ROOT" ]] || owner=()

    say "user $SERVICE_USER (groups: $SERVICE_USER, dialout)"
    if [[ -n "$ROOT" ]]; then
        echo "    (--root: no user is created)"
    else
        if getent group dialout >/dev/null; then :; else run groupadd --system dialout; fi
        if getent passwd "$SERVICE_USER" >/dev/null; then
            run usermod --append --groups dialout "$SERVICE_USER"
        else
            run useradd --system --user-group --groups dialout \
                --home-dir "$STATE_DIR" --no-create-home \
                --shell /usr/sbin/nologin --comment "smscmd agent" "$SERVICE_USER"
        fi
    fi

    say "virtualenv $venv with $REPO${WHEELHOUSE:+ (offline, from $WHEELHOUSE)}"
    if [[ ! -x "$venv/bin/python" ]]; then
        run "$PYTHON" -m venv "$venv"
    fi
    local pip=("$venv/bin/python" -m pip --disable-pip-version-check install --quiet --upgrade)
    if [[ -n "$WHEELHOUSE" ]]; then
        pip+=(--no-index --find-links "$WHEELHOUSE")
    fi
    local work
    work="$(mktemp -d)"
    # shellcheck disable=SC2064  # expand now: $work is local
    trap "rm -rf -- '$work'" EXIT
    copy_source "$work/source"
    if ! run "${pip[@]}" "$work/source"; then
        if [[ -n "$WHEELHOUSE" ]]; then
            fail "the wheelhouse lacks a wheel for this machine ($(uname -m)," \
                "$("$PYTHON" -V 2>&1)): build it with install.sh wheelhouse DIR" \
                "--platform ... --python-version ... (see hardware/README.md)"
        fi
        fail "pip could not install $REPO"
    fi
    run mkdir -p "$(dest "$(dirname "$LINK")")"
    run ln -sfn "$PREFIX/bin/smscmd" "$(dest "$LINK")"

    say "configuration $CONFIG_DIR/agent.toml"
    run install -d -m 0750 "${owner[@]}" "$(dest "$CONFIG_DIR")"
    if [[ -e "$(dest "$CONFIG_DIR/agent.toml")" ]]; then
        echo "    keeping the existing $CONFIG_DIR/agent.toml"
    else
        run install -m 0640 "${owner[@]}" "$EXAMPLE_SRC" "$(dest "$CONFIG_DIR/agent.toml")"
        echo "    edit $CONFIG_DIR/agent.toml (at least [agent] port) before starting"
    fi

    say "systemd unit $UNIT_DEST"
    run mkdir -p "$(dest "$(dirname "$UNIT_DEST")")"
    if [[ "$PREFIX" == /opt/smscmd ]]; then
        run install -m 0644 "$UNIT_SRC" "$(dest "$UNIT_DEST")"
    else
        echo "+ sed 's#/opt/smscmd/#$PREFIX/#g' $UNIT_SRC > $(dest "$UNIT_DEST")"
        if [[ $DRY_RUN -eq 0 ]]; then
            sed "s#/opt/smscmd/#$PREFIX/#g" "$UNIT_SRC" >"$(dest "$UNIT_DEST").tmp"
            chmod 0644 "$(dest "$UNIT_DEST").tmp"
            mv -f "$(dest "$UNIT_DEST").tmp" "$(dest "$UNIT_DEST")"
        fi
    fi

    say "udev rules $RULES_DEST"
    run mkdir -p "$(dest "$(dirname "$RULES_DEST")")"
    run install -m 0644 "$RULES_SRC" "$(dest "$RULES_DEST")"

    say "reload systemd and udev"
    if [[ -n "$ROOT" ]]; then
        echo "    (--root: systemd and udev are not told)"
    else
        if have systemctl; then run systemctl daemon-reload; else echo "    (no systemctl)"; fi
        if have udevadm; then
            run udevadm control --reload
            run udevadm trigger --subsystem-match=tty --action=add
        else
            echo "    (no udevadm)"
        fi
    fi

    say "installed. Next:"
    echo "    sudoedit $CONFIG_DIR/agent.toml"
    echo "    sudo systemctl enable --now smscmd"
    echo "    systemctl status smscmd; journalctl -u smscmd -f; sudo smscmd status --config $CONFIG_DIR/agent.toml"
}

do_uninstall() {
    local venv
    venv="$(dest "$PREFIX")"
    say "systemd unit $UNIT_DEST"
    if [[ -e "$(dest "$UNIT_DEST")" ]]; then
        if [[ -z "$ROOT" ]] && have systemctl; then
            run systemctl disable --now smscmd.service || true
        fi
        run rm -f "$(dest "$UNIT_DEST")"
    else
        echo "    not installed"
    fi
    if [[ -z "$ROOT" ]] && have systemctl; then run systemctl daemon-reload || true; fi

    say "udev rules $RULES_DEST"
    if [[ -e "$(dest "$RULES_DEST")" ]]; then
        run rm -f "$(dest "$RULES_DEST")"
        if [[ -z "$ROOT" ]] && have udevadm; then run udevadm control --reload || true; fi
    else
        echo "    not installed"
    fi

    say "virtualenv $venv"
    if [[ -L "$(dest "$LINK")" && "$(readlink "$(dest "$LINK")")" == "$PREFIX/bin/smscmd" ]]; then
        run rm -f "$(dest "$LINK")"
    fi
    if [[ -f "$venv/pyvenv.cfg" ]]; then
        run rm -rf -- "$venv"
    elif [[ -e "$venv" ]]; then
        echo "    $venv is not a virtualenv (no pyvenv.cfg): left alone"
    else
        echo "    not installed"
    fi

    say "user $SERVICE_USER"
    if [[ -n "$ROOT" ]]; then
        echo "    (--root: no user is removed)"
    elif getent passwd "$SERVICE_USER" >/dev/null; then
        run userdel "$SERVICE_USER"
    else
        echo "    no such user"
    fi
    if [[ -z "$ROOT" ]] && getent group "$SERVICE_USER" >/dev/null; then
        run groupdel "$SERVICE_USER" || true
    fi

    say "kept: $STATE_DIR (the journal) and $CONFIG_DIR (the configuration);" \
        "remove them by hand if they are no longer needed"
}

main() {
    parse_args "$@"
    if [[ "$ACTION" != wheelhouse ]]; then
        require_root
    fi
    if [[ $DRY_RUN -eq 1 ]]; then
        say "dry run: nothing is changed"
    fi
    case "$ACTION" in
        install) do_install ;;
        uninstall) do_uninstall ;;
        wheelhouse) do_wheelhouse ;;
    esac
}

main "$@"
