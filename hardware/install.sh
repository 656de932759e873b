#!/usr/bin/env bash
# Install or remove smscmd as a hardened systemd service on a gateway, or build a
# wheelhouse for an offline install.
#
#   sudo hardware/install.sh install   [--prefix /opt/smscmd] [--python /usr/bin/python3]
#                                      [--wheelhouse DIR] [--instance NAME] [--port DEV]
#                                      [--handlers-network | --no-handlers-network]
#                                      [--agent-network [HOST ...] | --no-agent-network]
#                                      [--metrics-textfile | --no-metrics-textfile]
#                                      [--action NAME ...] [--root DIR] [--no-venv] [--dry-run]
#   sudo hardware/install.sh uninstall [--prefix /opt/smscmd] [--root DIR] [--dry-run]
#        hardware/install.sh wheelhouse DIR [--python PATH]
#                                      [--platform TAG ...] [--python-version X.Y]
#
# install (idempotent: run it again to upgrade; a running agent is restarted):
#   - system user and group `smscmd`, member of `dialout` (the serial ports)
#   - a virtualenv at PREFIX made by the system Python (/usr/bin/python3, >= 3.11, with
#     the venv module; --python another), this repository pip-installed into it, and
#     the command linked as /usr/local/bin/smscmd. --wheelhouse DIR installs from DIR
#     alone (pip --no-index --find-links DIR): no network is used.
#   - /etc/smscmd/agent.toml from hardware/agent.toml.example (an existing one is kept,
#     and made root:smscmd 0640 so that the agent can read it); --port sets its port.
#     --instance NAME writes /etc/smscmd/NAME.toml instead, for smscmd@NAME.service,
#     with its own journal and control socket.
#   - /etc/systemd/system/: smscmd.service, the template smscmd@.service and the
#     privileged-action units smscmd-action@.path/.service; /etc/udev/rules.d/99-smscmd.rules
#   - --handlers-network: the drop-in smscmd.service.d/handlers-network.conf (and for
#     smscmd@.service) that gives handlers the network; --no-handlers-network removes it
#     (without either, an installed one is kept)
#   - --agent-network [HOST ...]: the drop-in agent-network.conf (both services) that
#     lets the agent open IP sockets to loopback and to each HOST only (an MQTT broker:
#     an address, a prefix such as 192.0.2.0/24, or a name resolved now with getent,
#     which also allows the name servers of /etc/resolv.conf); --no-agent-network
#     removes it (without either, an installed one is kept; a re-run with the option
#     writes it anew with the hosts given then)
#   - --metrics-textfile: the drop-in smscmd.service.d/metrics-textfile.conf (and for
#     smscmd@.service) that lets [metrics] write node_exporter's textfile directory
#     /var/lib/prometheus/node-exporter, which it makes root:smscmd 0775 (created when
#     missing; a dpkg-statoverride where dpkg is); --no-metrics-textfile removes the
#     drop-in (the directory keeps its mode: say `dpkg-statoverride --remove` to undo)
#   - --action NAME: the root-owned script /etc/smscmd/actions/NAME from
#     hardware/actions/NAME, the handler request-action, the request directory
#     /run/smscmd-actions and smscmd-action@NAME.path enabled
#   - systemctl daemon-reload and a restart of smscmd / smscmd@* that were running,
#     udevadm control --reload and trigger; without a running systemd or udev (a chroot,
#     a container) it says so and goes on
# uninstall: stops, disables and removes every unit, drop-in, action unit, tmpfiles
#   entry and udev rule install created, the handler request-action, the virtualenv,
#   /usr/local/bin/smscmd and the user and group; keeps /var/lib/smscmd (the journals)
#   and /etc/smscmd (the configuration and the action scripts).
# wheelhouse (on a connected machine): DIR gets the project's wheel, a wheel of every
#   runtime dependency and the build requirements of pyproject.toml [build-system],
#   for this machine or for the target named by --platform/--python-version
#   (e.g. --platform manylinux2014_aarch64 --python-version 3.11 for a 64-bit Pi).
#
# --dry-run prints every step ("+ command") without changing anything.
# --root DIR writes every file under DIR instead of / (for tests and inspection): no
#   user is created, nothing is chown'ed, systemd and udev are not told (units are
#   enabled by their symlinks, as systemctl enable makes them); the virtualenv goes to
#   DIR/PREFIX and names that path, so it runs there only (to build an image, run
#   install.sh inside the image's chroot instead).
# --no-venv installs the files alone (no Python, no virtualenv, no /usr/local/bin/smscmd):
#   for a system that brings the agent another way, and for tests of the files.
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
INSTANCE=""
PORT=""
HANDLERS_NETWORK=""
AGENT_NETWORK=""
AGENT_HOSTS=()
METRICS_TEXTFILE=""
ACTIONS=()
NO_VENV=0

SERVICE_USER=smscmd
CONFIG_DIR=/etc/smscmd
STATE_DIR=/var/lib/smscmd
SYSTEMD_DIR=/etc/systemd/system
UNITS=(smscmd.service smscmd@.service smscmd-action@.path smscmd-action@.service)
SERVICES=(smscmd.service smscmd@.service)
NETWORK_DROPIN=handlers-network.conf
AGENT_DROPIN=agent-network.conf
ACTIONS_DROPIN=actions.conf
TEXTFILE_DROPIN=metrics-textfile.conf
TEXTFILE_DIR=/var/lib/prometheus/node-exporter
RULES_DEST=/etc/udev/rules.d/99-smscmd.rules
TMPFILES_DEST=/etc/tmpfiles.d/smscmd.conf
ACTIONS_DIR=/etc/smscmd/actions
REQUESTS_DIR=/run/smscmd-actions
HANDLERS_DIR=/usr/local/lib/smscmd/handlers
REQUEST_HANDLER=request-action
RULES_SRC="$HERE/udev/99-smscmd.rules"
TMPFILES_SRC="$HERE/tmpfiles.d/smscmd.conf"
EXAMPLE_SRC="$HERE/agent.toml.example"
LINK=/usr/local/bin/smscmd

usage() {
    cat >&2 <<EOF
usage: $0 install   [--prefix DIR] [--python PATH] [--wheelhouse DIR]
                    [--instance NAME] [--port DEV] [--handlers-network | --no-handlers-network]
                    [--agent-network [HOST ...] | --no-agent-network]
                    [--metrics-textfile | --no-metrics-textfile]
                    [--action NAME ...] [--root DIR] [--no-venv] [--dry-run]
       $0 uninstall [--prefix DIR] [--root DIR] [--dry-run]
       $0 wheelhouse DIR [--python PATH] [--platform TAG ...] [--python-version X.Y]
EOF
    exit 2
}

fail() {
    echo "install.sh: $*" >&2
    exit 1
}

bad_usage() {
    echo "install.sh: $*" >&2
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
    local with_value="--prefix|--python|--wheelhouse|--root|--platform|--python-version"
    with_value+="|--instance|--port|--action"
    while [[ $# -gt 0 ]]; do
        if [[ "$1" =~ ^($with_value)$ ]]; then
            [[ $# -ge 2 ]] || usage
            set_option "$1" "$2"
            shift 2
            continue
        elif [[ "$1" =~ ^($with_value)= ]]; then
            set_option "${1%%=*}" "${1#*=}"
            shift
            continue
        fi
        case "$1" in
            --dry-run) DRY_RUN=1 ;;
            --no-venv) NO_VENV=1 ;;
            --handlers-network) HANDLERS_NETWORK=yes ;;
            --no-handlers-network) HANDLERS_NETWORK=no ;;
            --agent-network)
                AGENT_NETWORK=yes
                # The hosts are the words that follow, up to the next option.
                while [[ $# -ge 2 && "$2" != -* ]]; do
                    AGENT_HOSTS+=("$2")
                    shift
                done
                ;;
            --no-agent-network) AGENT_NETWORK=no ;;
            --metrics-textfile) METRICS_TEXTFILE=yes ;;
            --no-metrics-textfile) METRICS_TEXTFILE=no ;;
            -h | --help) usage ;;
            *)
                echo "unknown argument: $1" >&2
                usage
                ;;
        esac
        shift
    done
    case "$ACTION" in
        install)
            [[ ${#PLATFORMS[@]} -eq 0 && -z "$PYTHON_VERSION" ]] \
                || bad_usage "--platform and --python-version are options of wheelhouse"
            ;;
        uninstall)
            [[ ${#PLATFORMS[@]} -eq 0 && -z "$PYTHON_VERSION$WHEELHOUSE$INSTANCE$PORT" \
                && -z "$HANDLERS_NETWORK$AGENT_NETWORK$METRICS_TEXTFILE" \
                && ${#ACTIONS[@]} -eq 0 \
                && $NO_VENV -eq 0 ]] \
                || bad_usage "uninstall takes --prefix, --root and --dry-run only"
            ;;
        wheelhouse)
            [[ -z "$WHEELHOUSE$ROOT$INSTANCE$PORT$HANDLERS_NETWORK$AGENT_NETWORK$METRICS_TEXTFILE" \
                && ${#ACTIONS[@]} -eq 0 \
                && $NO_VENV -eq 0 ]] \
                || bad_usage "wheelhouse takes --python, --platform and --python-version only"
            ;;
        *) usage ;;
    esac
    [[ "$PREFIX" == /* ]] || bad_usage "--prefix must be an absolute path"
    PREFIX="${PREFIX%/}"
    [[ -n "$PREFIX" ]] || bad_usage "--prefix must not be /"
    if [[ -n "$ROOT" ]]; then
        [[ "$ROOT" == /* ]] || bad_usage "--root must be an absolute path"
        ROOT="${ROOT%/}"
    fi
    # The name goes into unit names and paths: no escaping, no "/", not the default's.
    if [[ -n "$INSTANCE" ]]; then
        [[ "$INSTANCE" =~ ^[A-Za-z0-9][A-Za-z0-9_-]*$ ]] \
            || bad_usage "--instance: letters, digits, _ and - (not first): $INSTANCE"
        [[ "$INSTANCE" != agent ]] || bad_usage "--instance agent would be agent.toml, smscmd.service's"
    fi
    if [[ -n "$PORT" && "$PORT" != /dev/* ]]; then
        bad_usage "--port must be a device path (/dev/...): $PORT"
    fi
    local name
    for name in "${AGENT_HOSTS[@]}"; do
        # An address, a prefix or a host name; nothing a drop-in line could be bent with.
        [[ "$name" =~ ^[A-Za-z0-9:][A-Za-z0-9.:/_-]*$ ]] \
            || bad_usage "--agent-network: not an address, prefix or host name: $name"
    done
    for name in "${ACTIONS[@]}"; do
        [[ "$name" =~ ^[a-z0-9][a-z0-9_-]*$ ]] \
            || bad_usage "--action: a-z, 0-9, _ and - (not first): $name"
    done
}

set_option() {
    case "$1" in
        --prefix) PREFIX="$2" ;;
        --python) PYTHON="$2" ;;
        --wheelhouse) WHEELHOUSE="$2" ;;
        --root) ROOT="$2" ;;
        --platform) PLATFORMS+=("$2") ;;
        --python-version) PYTHON_VERSION="$2" ;;
        --instance) INSTANCE="$2"; [[ -n "$2" ]] || bad_usage "--instance needs a name" ;;
        --port) PORT="$2" ;;
        --action) ACTIONS+=("$2") ;;
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

# systemd as the running init (not only installed: a chroot or a container without
# it has systemctl but no manager to talk to).
systemd_running() {
    [[ -z "$ROOT" && -d /run/systemd/system ]] && have systemctl
}

udev_running() {
    [[ -z "$ROOT" ]] && have udevadm && udevadm control --ping --timeout=5 >/dev/null 2>&1
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

# Copy a shipped file into place with its mode (and root:GROUP unless --root), the
# default prefix /opt/smscmd in it replaced by --prefix.
put() { # mode group source destination
    local mode="$1" group="$2" src="$3" target
    target="$(dest "$4")"
    run mkdir -p "$(dirname "$target")"
    if [[ "$PREFIX" == /opt/smscmd ]] || ! grep -q /opt/smscmd/ "$src"; then
        run install -m "$mode" "$src" "$target"
    else
        echo "+ sed 's#/opt/smscmd/#$PREFIX/#g' $src > $target (mode $mode)"
        if [[ $DRY_RUN -eq 0 ]]; then
            sed "s#/opt/smscmd/#$PREFIX/#g" "$src" >"$target.tmp"
            chmod "$mode" "$target.tmp"
            mv -f "$target.tmp" "$target"
        fi
    fi
    if [[ -z "$ROOT" ]]; then run chown "root:$group" "$target"; fi
}

# An existing configuration file: root:smscmd 0640, so that the agent (group smscmd)
# reads it and nobody else does; says what it changed.
keep_config() {
    local file
    file="$(dest "$1")"
    echo "    keeping the existing $1"
    if [[ -z "$ROOT" && "$(stat -c %U:%G "$file")" != "root:$SERVICE_USER" ]]; then
        echo "    it was $(stat -c %U:%G "$file"): the agent reads it as group $SERVICE_USER"
        run chown "root:$SERVICE_USER" "$file"
    fi
    if [[ "$(stat -c %a "$file")" != 640 ]]; then
        echo "    it was mode $(stat -c %a "$file"): now 0640"
        run chmod 0640 "$file"
    fi
}

# The configuration file of smscmd.service (agent.toml) or of smscmd@NAME (NAME.toml,
# with that instance's journal and control socket): from the example, or kept.
install_config() {
    local name=agent journal="" socket=""
    if [[ -n "$INSTANCE" ]]; then
        name="$INSTANCE"
        journal="$STATE_DIR/$INSTANCE/journal.sqlite3"
        socket="/run/smscmd@$INSTANCE/control.sock"
    fi
    local file="$CONFIG_DIR/$name.toml"
    say "configuration $file${INSTANCE:+ (smscmd@$INSTANCE.service)}"
    run install -d -m 0750 "${OWNER[@]}" "$(dest "$CONFIG_DIR")"
    if [[ -e "$(dest "$file")" ]]; then
        keep_config "$file"
        if [[ -n "$PORT" ]]; then
            echo "    --port $PORT not applied to the kept file: edit its [agent] port"
        fi
        return
    fi
    local edits=()
    [[ -z "$INSTANCE" ]] || edits+=(-e "1s#/etc/smscmd/agent.toml#$file, smscmd@$INSTANCE.service's#")
    [[ -z "$PORT" ]] || edits+=(-e "s#^port = .*#port = \"$PORT\"#")
    [[ -z "$journal" ]] || edits+=(-e "s#^journal = .*#journal = \"$journal\"#")
    [[ -z "$socket" ]] || edits+=(-e "s#^control_socket = .*#control_socket = \"$socket\"#")
    echo "+ sed ${edits[*]} $EXAMPLE_SRC > $(dest "$file") (mode 0640)"
    if [[ $DRY_RUN -eq 0 ]]; then
        sed "${edits[@]}" -e '' "$EXAMPLE_SRC" >"$(dest "$file").tmp"
        chmod 0640 "$(dest "$file").tmp"
        mv -f "$(dest "$file").tmp" "$(dest "$file")"
    fi
    if [[ -z "$ROOT" ]]; then run chown "root:$SERVICE_USER" "$(dest "$file")"; fi
    [[ -n "$PORT" ]] || echo "    edit $file (at least [agent] port) before starting"
}

install_units() {
    local unit
    say "systemd units in $SYSTEMD_DIR: ${UNITS[*]}"
    for unit in "${UNITS[@]}"; do
        put 0644 root "$HERE/systemd/$unit" "$SYSTEMD_DIR/$unit"
    done
    case "$HANDLERS_NETWORK" in
        yes)
            say "network for handlers: $NETWORK_DROPIN for ${SERVICES[*]}"
            put_dropins "$NETWORK_DROPIN"
            ;;
        no)
            say "no network for handlers: $NETWORK_DROPIN removed"
            remove_dropins "$NETWORK_DROPIN"
            ;;
        *) note_kept_dropin "$NETWORK_DROPIN" "handlers have the network; --no-handlers-network removes it" ;;
    esac
    case "$AGENT_NETWORK" in
        yes) install_agent_network ;;
        no)
            say "no network for the agent: $AGENT_DROPIN removed"
            remove_dropins "$AGENT_DROPIN"
            ;;
        *) note_kept_dropin "$AGENT_DROPIN" "the agent's IP; --no-agent-network removes it" ;;
    esac
}

# The drop-in FILE (hardware/systemd/drop-in/) into each service's .d/ directory.
put_dropins() { # file
    local service
    for service in "${SERVICES[@]}"; do
        put 0644 root "$HERE/systemd/drop-in/$1" "$SYSTEMD_DIR/$service.d/$1"
    done
}

# The drop-in FILE out of each service's .d/ directory.
remove_dropins() { # file
    local service
    for service in "${SERVICES[@]}"; do
        remove_dropin "$service" "$1"
    done
}

# Neither --X nor --no-X given: an installed drop-in FILE stays, and is named.
note_kept_dropin() { # file why
    local conf="$SYSTEMD_DIR/smscmd.service.d/$1"
    if [[ -e "$(dest "$conf")" ]]; then
        echo "    keeping $conf ($2)"
    fi
}

# The addresses IPAddressAllow= takes for HOST: itself when it is an address or a
# prefix, else what it resolves to now (getent: /etc/hosts, then DNS).
host_addresses() { # host
    if [[ "$1" == *:* || "$1" =~ ^[0-9.]+(/[0-9]+)?$ ]]; then
        echo "$1"
    else
        getent ahosts "$1" | awk '{print $1}' | sort -u
    fi
}

# install.sh --agent-network [HOST ...]: the shipped agent-network.conf (loopback) and
# one IPAddressAllow= line per HOST; when a HOST is a name outside /etc/hosts, the name
# servers of /etc/resolv.conf too (the agent resolves the name again at each
# connection; a loopback stub such as systemd-resolved's 127.0.0.53 is allowed already).
install_agent_network() {
    local host addresses lines=() named="" service
    for host in "${AGENT_HOSTS[@]}"; do
        mapfile -t addresses < <(host_addresses "$host")
        [[ ${#addresses[@]} -gt 0 ]] \
            || fail "--agent-network: $host does not resolve here (getent ahosts $host)"
        # A name /etc/hosts does not know is looked up again by the agent, in the DNS.
        if [[ "$host" != "${addresses[0]}" ]] && ! getent -s files ahosts "$host" >/dev/null; then
            named="$host"
        fi
        lines+=("# $host" "IPAddressAllow=${addresses[*]}")
    done
    if [[ -n "$named" && -r /etc/resolv.conf ]]; then
        mapfile -t addresses < <(awk '$1 == "nameserver" {sub(/%.*/, "", $2); print $2}' \
            /etc/resolv.conf)
        if [[ ${#addresses[@]} -gt 0 ]]; then
            lines+=("# the name servers of /etc/resolv.conf (to resolve $named)"
                "IPAddressAllow=${addresses[*]}")
        fi
    fi
    say "network for the agent: $AGENT_DROPIN (loopback${AGENT_HOSTS[*]:+ and ${AGENT_HOSTS[*]}}) for ${SERVICES[*]}"
    for service in "${SERVICES[@]}"; do
        local target
        target="$(dest "$SYSTEMD_DIR/$service.d/$AGENT_DROPIN")"
        run mkdir -p "$(dirname "$target")"
        echo "+ cat $HERE/systemd/drop-in/$AGENT_DROPIN${lines[*]:+ (+ ${#lines[@]} lines)} > $target (mode 0644)"
        if [[ $DRY_RUN -eq 0 ]]; then
            {
                cat "$HERE/systemd/drop-in/$AGENT_DROPIN"
                [[ ${#lines[@]} -eq 0 ]] || printf '%s\n' "${lines[@]}"
            } >"$target.tmp"
            chmod 0644 "$target.tmp"
            mv -f "$target.tmp" "$target"
        fi
        if [[ -z "$ROOT" ]]; then run chown root:root "$target"; fi
    done
}

# --metrics-textfile: the drop-in, and node_exporter's directory writable by the agent's
# group (rename(2) of the new file into it needs write on the directory).
install_textfile() {
    case "$METRICS_TEXTFILE" in
        yes)
            say "metrics textfile: $TEXTFILE_DROPIN for ${SERVICES[*]}, $TEXTFILE_DIR root:$SERVICE_USER 0775"
            put_dropins "$TEXTFILE_DROPIN"
            run install -d -m 0775 "${OWNER[@]}" "$(dest "$TEXTFILE_DIR")"
            if [[ -z "$ROOT" ]] && have dpkg-statoverride \
                && ! dpkg-statoverride --list "$TEXTFILE_DIR" >/dev/null; then
                run dpkg-statoverride --add root "$SERVICE_USER" 0775 "$TEXTFILE_DIR"
            fi
            ;;
        no)
            say "no metrics textfile: $TEXTFILE_DROPIN removed"
            remove_dropins "$TEXTFILE_DROPIN"
            ;;
        *) note_kept_dropin "$TEXTFILE_DROPIN" "--no-metrics-textfile removes it" ;;
    esac
}

install_actions() {
    [[ ${#ACTIONS[@]} -gt 0 ]] || return 0
    local name
    say "privileged actions: ${ACTIONS[*]}"
    run install -d -m 0755 "${ROOT_OWNER[@]}" "$(dest "$ACTIONS_DIR")"
    for name in "${ACTIONS[@]}"; do
        if [[ -f "$HERE/actions/$name" ]]; then
            put 0755 root "$HERE/actions/$name" "$ACTIONS_DIR/$name"
        elif [[ -x "$(dest "$ACTIONS_DIR/$name")" ]]; then
            echo "    $ACTIONS_DIR/$name: your own script (none ships as hardware/actions/$name)"
        else
            fail "no action $name: neither hardware/actions/$name nor an executable" \
                "$ACTIONS_DIR/$name (shipped: $(cd "$HERE/actions" && echo *))"
        fi
    done
    put 0755 root "$HERE/handlers/$REQUEST_HANDLER" "$HANDLERS_DIR/$REQUEST_HANDLER"
    put 0644 root "$TMPFILES_SRC" "$TMPFILES_DEST"
    put_dropins "$ACTIONS_DROPIN"
}

# Remove install.sh's drop-ins FILE... of SERVICE, and its .d directory when nothing
# else is left there (a `systemctl edit` override.conf is the operator's: kept).
remove_dropin() { # service file...
    local dir file kept=() others
    dir="$(dest "$SYSTEMD_DIR/$1.d")"
    shift
    [[ -d "$dir" ]] || return 0
    for file in "$@"; do
        if [[ -e "$dir/$file" ]]; then run rm -f "$dir/$file"; fi
    done
    for file in "$NETWORK_DROPIN" "$AGENT_DROPIN" "$ACTIONS_DROPIN" "$TEXTFILE_DROPIN"; do
        [[ ! -e "$dir/$file" || " $* " == *" $file "* ]] || kept+=("$file")
    done
    others="$(find "$dir" -mindepth 1 -maxdepth 1 ! -name "$NETWORK_DROPIN" \
        ! -name "$AGENT_DROPIN" ! -name "$ACTIONS_DROPIN" ! -name "$TEXTFILE_DROPIN" \
        -printf '%f ')"
    if [[ -n "$others" ]]; then
        echo "    keeping ${dir#"$ROOT"}/ (${others% }: not install.sh's)"
    elif [[ ${#kept[@]} -eq 0 ]]; then
        run rmdir "$dir"
    fi
}

# Tell systemd: reload, restart what was running (the new code, the new unit), create
# the action request directory, enable the action path units. Without a running
# systemd, the enabling symlinks are made by hand (what systemctl enable makes).
apply_systemd() {
    local name active=()
    say "systemd"
    if systemd_running; then
        run systemctl daemon-reload
        mapfile -t active < <(systemctl list-units --plain --no-legend --state=active \
            smscmd.service 'smscmd@*.service' | awk '{print $1}')
        for name in "${active[@]}"; do
            echo "    $name was running: restarting it"
            run systemctl restart "$name" \
                || echo "    $name did not start again: systemctl status $name" >&2
        done
        if [[ ${#ACTIONS[@]} -gt 0 ]]; then
            run systemd-tmpfiles --create "$TMPFILES_DEST"
            for name in "${ACTIONS[@]}"; do
                run systemctl enable --now "smscmd-action@$name.path"
            done
        fi
    else
        if [[ -n "$ROOT" ]]; then
            echo "    (--root: systemd is not told)"
        else
            echo "    (systemd is not running here: no daemon-reload, no restart; the units" \
                "apply when it runs)"
        fi
        for name in "${ACTIONS[@]}"; do
            run mkdir -p "$(dest "$SYSTEMD_DIR/paths.target.wants")"
            run ln -sfn "$SYSTEMD_DIR/smscmd-action@.path" \
                "$(dest "$SYSTEMD_DIR/paths.target.wants/smscmd-action@$name.path")"
        done
    fi
}

apply_udev() {
    say "udev"
    if udev_running; then
        run udevadm control --reload
        run udevadm trigger --subsystem-match=tty --action=add
        # The whole-module ID_MM_DEVICE_IGNORE, for a module already plugged in.
        run udevadm trigger --subsystem-match=usb --action=change
    elif [[ -n "$ROOT" ]]; then
        echo "    (--root: udev is not told)"
    else
        echo "    (udev is not running here: the rules apply when it runs, or at the next boot)"
    fi
}

# The virtualenv at PREFIX (under --root: DIR/PREFIX) with this checkout in it, from the
# index or, with --wheelhouse, from that directory alone; /usr/local/bin/smscmd.
install_venv() { # venv
    local venv="$1" work
    check_python
    if [[ -n "$WHEELHOUSE" ]]; then
        [[ -d "$WHEELHOUSE" ]] || fail "no wheelhouse directory $WHEELHOUSE"
        WHEELHOUSE="$(cd "$WHEELHOUSE" && pwd)"
    fi
    say "virtualenv $venv with $REPO${WHEELHOUSE:+ (offline, from $WHEELHOUSE)}"
    if [[ ! -x "$venv/bin/python" ]]; then
        run "$PYTHON" -m venv "$venv"
    fi
    local pip=("$venv/bin/python" -m pip --disable-pip-version-check install --quiet --upgrade)
    if [[ -n "$WHEELHOUSE" ]]; then
        pip+=(--no-index --find-links "$WHEELHOUSE")
    fi
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
}

do_install() {
    local file
    for file in "${UNITS[@]/#/$HERE/systemd/}" "$RULES_SRC" "$EXAMPLE_SRC" "$TMPFILES_SRC" \
        "$HERE/systemd/drop-in/$NETWORK_DROPIN" "$HERE/systemd/drop-in/$AGENT_DROPIN" \
        "$HERE/systemd/drop-in/$ACTIONS_DROPIN" "$HERE/systemd/drop-in/$TEXTFILE_DROPIN" \
        "$REPO/pyproject.toml"; do
        [[ -f "$file" ]] || fail "missing $file"
    done
    local venv
    venv="$(dest "$PREFIX")"
    OWNER=(-o root -g "$SERVICE_USER")
    ROOT_OWNER=(-o root -g root)
    if [[ -n "$ROOT" ]]; then
        OWNER=()
        ROOT_OWNER=()
    fi

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

    if [[ $NO_VENV -eq 0 ]]; then
        install_venv "$venv"
    fi
    install_config
    install_units
    install_textfile
    install_actions
    say "udev rules $RULES_DEST"
    put 0644 root "$RULES_SRC" "$RULES_DEST"
    apply_systemd
    apply_udev

    say "installed. Next:"
    local unit=smscmd config="$CONFIG_DIR/agent.toml"
    if [[ -n "$INSTANCE" ]]; then
        unit="smscmd@$INSTANCE"
        config="$CONFIG_DIR/$INSTANCE.toml"
    fi
    echo "    sudoedit $config"
    for file in "${ACTIONS[@]}"; do
        echo "    and a handler for it there: [handlers.\"$file\"]" \
            "argv = [\"$HANDLERS_DIR/$REQUEST_HANDLER\", \"$file\"]"
    done
    echo "    sudo systemctl enable --now $unit"
    echo "    systemctl status $unit; journalctl -u $unit -f; smscmd status --config $config"
}

do_uninstall() {
    local venv unit name links=()
    venv="$(dest "$PREFIX")"
    say "systemd units"
    # Every enabled smscmd unit (the service, its instances, the action path units).
    mapfile -t links < <(find "$(dest "$SYSTEMD_DIR")" -mindepth 2 -maxdepth 2 -type l \
        \( -name 'smscmd.service' -o -name 'smscmd@*.service' -o -name 'smscmd-action@*.path' \) \
        -path '*.wants/*' 2>/dev/null | sort)
    if systemd_running; then
        for name in "${links[@]}"; do
            run systemctl disable --now "$(basename "$name")" || true
        done
        run systemctl stop smscmd.service 'smscmd@*.service' 'smscmd-action@*.path' || true
    else
        for name in "${links[@]}"; do
            run rm -f "$name"
        done
    fi
    for unit in "${UNITS[@]}"; do
        if [[ -e "$(dest "$SYSTEMD_DIR/$unit")" ]]; then run rm -f "$(dest "$SYSTEMD_DIR/$unit")"; fi
    done
    for unit in "${SERVICES[@]}"; do
        remove_dropin "$unit" "$NETWORK_DROPIN" "$AGENT_DROPIN" "$ACTIONS_DROPIN" \
            "$TEXTFILE_DROPIN"
    done
    if [[ -e "$(dest "$TMPFILES_DEST")" ]]; then run rm -f "$(dest "$TMPFILES_DEST")"; fi
    if [[ -d "$(dest "$REQUESTS_DIR")" ]]; then run rm -rf -- "$(dest "$REQUESTS_DIR")"; fi
    if systemd_running; then run systemctl daemon-reload || true; fi

    say "handler $HANDLERS_DIR/$REQUEST_HANDLER"
    if [[ -e "$(dest "$HANDLERS_DIR/$REQUEST_HANDLER")" ]]; then
        run rm -f "$(dest "$HANDLERS_DIR/$REQUEST_HANDLER")"
        run rmdir --ignore-fail-on-non-empty "$(dest "$HANDLERS_DIR")" "$(dest "$(dirname "$HANDLERS_DIR")")"
    else
        echo "    not installed"
    fi

    say "udev rules $RULES_DEST"
    if [[ -e "$(dest "$RULES_DEST")" ]]; then
        run rm -f "$(dest "$RULES_DEST")"
        if udev_running; then run udevadm control --reload || true; fi
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

    say "kept: $STATE_DIR (the journals) and $CONFIG_DIR (the configuration, the action" \
        "scripts); remove them by hand if they are no longer needed"
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
