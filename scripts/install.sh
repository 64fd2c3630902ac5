#!/bin/sh
# Install monitoring-agent from the checkout this script lives in:
#   PREFIX (default /opt/monitoring-agent)    a virtualenv holding the agent
#   /etc/systemd/system/monitoring-agent.service
#   /etc/monitoring-agent.conf                 the sample, only if absent
# then, when systemd runs and DESTDIR is empty, enable and start the service.
#
# DESTDIR (flag or environment) stages the whole tree under another root, as
# `make install DESTDIR=...` does: the files are written there but name
# PREFIX, so the scripts' #! lines point at PREFIX/bin/python, not at the
# staging copy.
#
# Running it again is safe: the virtualenv is reused and the agent
# reinstalled from the checkout (that is how to upgrade), the unit rewritten
# only if it differs, an existing configuration never touched.
# PREFIX/install-manifest records what was created, for uninstall.sh.
set -eu

DEFAULT_PREFIX=/opt/monitoring-agent
PREFIX=$DEFAULT_PREFIX
DESTDIR=${DESTDIR:-}
PYTHON=python3
UNIT=monitoring-agent.service
CONFIG=/etc/monitoring-agent.conf

usage() {
    cat <<EOF
usage: $0 [--prefix DIR] [--destdir DIR] [--python PY]

  --prefix DIR    virtualenv to install into (default $DEFAULT_PREFIX)
  --destdir DIR   stage everything under DIR (default: \$DESTDIR, else /);
                  with a DESTDIR, systemctl is never run
  --python PY     interpreter for the virtualenv, Python >= 3.10 (default python3)
EOF
}

say() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case $1 in
        --prefix|--destdir|--python)
            [ $# -ge 2 ] || die "$1 needs a value"
            opt=$1 val=$2
            shift 2 ;;
        --prefix=*|--destdir=*|--python=*)
            opt=${1%%=*} val=${1#*=}
            shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
    case $opt in
        --prefix) PREFIX=$val ;;
        --destdir) DESTDIR=$val ;;
        --python) PYTHON=$val ;;
    esac
done

# Normalise: no trailing slashes; PREFIX absolute and not the root itself,
# since uninstall.sh removes it whole.
while [ "${PREFIX%/}" != "$PREFIX" ]; do PREFIX=${PREFIX%/}; done
case $PREFIX in
    /?*) ;;
    *) die "--prefix must be an absolute directory other than /, got '$PREFIX'" ;;
esac
if [ -n "$DESTDIR" ]; then
    mkdir -p "$DESTDIR"
    DESTDIR=$(cd "$DESTDIR" && pwd -P)
    [ "$DESTDIR" != / ] || DESTDIR=
fi

REPO=$(cd "$(dirname "$0")/.." && pwd -P)
[ -f "$REPO/pyproject.toml" ] && [ -f "$REPO/systemd/$UNIT" ] ||
    die "$REPO is not a monitoring-agent checkout"

ROOT=$DESTDIR$PREFIX
MANIFEST=$ROOT/install-manifest

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Directories (paths as installed, without DESTDIR) that do not exist yet,
# outermost first, so that uninstall.sh can remove exactly those.
missing_dirs() {
    d=$1 out=
    while [ "$d" != / ] && [ ! -d "$DESTDIR$d" ]; do
        out="$d
$out"
        d=$(dirname "$d")
    done
    printf '%s' "$out"
}

# One "KIND PATH" line per thing created, PATH as installed (no DESTDIR):
#   venv PREFIX | file PATH | dir PATH | config PATH (kept by uninstall.sh)
record() {
    grep -qxF "$1 $2" "$MANIFEST" || printf '%s %s\n' "$1" "$2" >>"$MANIFEST"
}

# mkdir -p that records the directories it creates.
make_dir() {
    missing_dirs "$1" >"$TMP/new-dirs"
    mkdir -p "$DESTDIR$1"
    while IFS= read -r d; do record dir "$d"; done <"$TMP/new-dirs"
}

# --- the virtualenv ----------------------------------------------------------
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null ||
    die "--python $PYTHON: not found, or older than Python 3.10"
# The unit's ProtectHome=yes hides /home, /root and /run/user from the
# service: a virtualenv built on an interpreter there cannot start under it.
base=$("$PYTHON" -c 'import os, sys; print(os.path.realpath(sys.base_prefix))')
case $base/ in
    /home/*|/root/*|/run/user/*)
        say "warning: $PYTHON lives in $base, which the unit's ProtectHome=yes hides;" \
            "the service will not start. Use a system Python (--python /usr/bin/python3)." >&2 ;;
esac

if [ -f "$MANIFEST" ] && [ -f "$ROOT/pyvenv.cfg" ]; then
    say "reusing the virtualenv at $ROOT"
elif [ -e "$ROOT" ] && [ -n "$(ls -A "$ROOT")" ]; then
    die "$ROOT exists and was not made by this script; remove it or choose another --prefix"
else
    # The manifest lives in the virtualenv, so the directories above it
    # are recorded once that exists.
    missing_dirs "$PREFIX" >"$TMP/prefix-dirs"
    mkdir -p "$ROOT"
    if ! "$PYTHON" -m venv "$ROOT"; then
        rm -rf "$ROOT"
        die "$PYTHON -m venv $ROOT failed (on Debian, apt-get install python3-venv)"
    fi
    : >"$MANIFEST"
    record venv "$PREFIX"
    while IFS= read -r d; do
        [ "$d" = "$PREFIX" ] || record dir "$d"
    done <"$TMP/prefix-dirs"
    say "created the virtualenv $ROOT"
fi

# --force-reinstall --no-deps: the checkout's code replaces the installed
# code even when the version number did not change; the dependencies are
# then brought in (or left alone when satisfied) by the second command.
say "installing the agent from $REPO"
"$ROOT/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    --force-reinstall --no-deps "$REPO"
"$ROOT/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "$REPO"

if [ -n "$DESTDIR" ]; then
    # pip wrote the staging path into the #! lines (and venv into activate):
    # make them name PREFIX, where the tree is meant to live.
    "$ROOT/bin/python" - "$ROOT" "$PREFIX" <<'EOF'
import os, sys
staged, final = sys.argv[1].encode(), sys.argv[2].encode()
bindir = os.path.join(sys.argv[1], "bin")
for name in sorted(os.listdir(bindir)):
    path = os.path.join(bindir, name)
    if os.path.islink(path) or not os.path.isfile(path):
        continue
    with open(path, "rb") as f:
        data = f.read()
    if staged in data and b"\0" not in data:
        with open(path, "wb") as f:
            f.write(data.replace(staged, final))
EOF
fi

# --- the unit ------------------------------------------------------------------
while IFS= read -r line || [ -n "$line" ]; do
    case $line in
        "ExecStart=$DEFAULT_PREFIX/bin/"*)
            line="ExecStart=$PREFIX/bin/${line#"ExecStart=$DEFAULT_PREFIX/bin/"}" ;;
    esac
    printf '%s\n' "$line"
done <"$REPO/systemd/$UNIT" >"$TMP/$UNIT"
unit_path=/etc/systemd/system/$UNIT
make_dir /etc/systemd/system
if cmp -s "$TMP/$UNIT" "$DESTDIR$unit_path"; then
    say "$DESTDIR$unit_path is up to date"
else
    # Written beside and renamed: systemd never reads a half-written unit.
    cp "$TMP/$UNIT" "$DESTDIR$unit_path.tmp"
    chmod 0644 "$DESTDIR$unit_path.tmp"
    mv -f "$DESTDIR$unit_path.tmp" "$DESTDIR$unit_path"
    say "installed $DESTDIR$unit_path"
fi
record file "$unit_path"

# --- the configuration -----------------------------------------------------------
make_dir /etc
if [ -e "$DESTDIR$CONFIG" ] || [ -L "$DESTDIR$CONFIG" ]; then
    say "kept the existing $DESTDIR$CONFIG"
else
    # 0644: DynamicUser= runs the agent as an unprivileged transient user,
    # which must be able to read it (it holds no secret).
    cp "$REPO/config/monitoring-agent.conf" "$DESTDIR$CONFIG.tmp"
    chmod 0644 "$DESTDIR$CONFIG.tmp"
    mv -f "$DESTDIR$CONFIG.tmp" "$DESTDIR$CONFIG"
    record config "$CONFIG"
    say "installed the sample configuration $DESTDIR$CONFIG"
fi

# --- systemd --------------------------------------------------------------------------
if [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; then
    was_active=$(systemctl is-active monitoring-agent 2>/dev/null || true)
    systemctl daemon-reload
    systemctl enable --now monitoring-agent
    if [ "$was_active" = active ]; then
        say "monitoring-agent was already running; 'systemctl restart monitoring-agent' runs the new code"
    else
        say "monitoring-agent enabled and started"
    fi
elif [ -z "$DESTDIR" ]; then
    say "systemd is not running here: start it with $PREFIX/bin/monitoring-agent --config $CONFIG"
fi
say "done"
