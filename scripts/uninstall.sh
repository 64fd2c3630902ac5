#!/bin/sh
# Remove what scripts/install.sh installed, as recorded in
# PREFIX/install-manifest: stop and disable the service (when systemd runs
# and DESTDIR is empty), remove the unit, the virtualenv and the directories
# install.sh created that are now empty.
#
# /etc/monitoring-agent.conf is left in place, whoever wrote it: it is the
# admin's configuration.  Delete it by hand if it is no longer wanted.
#
# Running it again once everything is gone is not an error.
set -eu

PREFIX=/opt/monitoring-agent
DESTDIR=${DESTDIR:-}
UNIT=monitoring-agent.service

usage() {
    cat <<EOF
usage: $0 [--prefix DIR] [--destdir DIR]

  --prefix DIR    the virtualenv install.sh created (default /opt/monitoring-agent)
  --destdir DIR   the staging root given to install.sh (default: \$DESTDIR, else /)
EOF
}

say() { printf 'uninstall.sh: %s\n' "$*"; }
die() { printf 'uninstall.sh: error: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case $1 in
        --prefix|--destdir)
            [ $# -ge 2 ] || die "$1 needs a value"
            opt=$1 val=$2
            shift 2 ;;
        --prefix=*|--destdir=*)
            opt=${1%%=*} val=${1#*=}
            shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
    case $opt in
        --prefix) PREFIX=$val ;;
        --destdir) DESTDIR=$val ;;
    esac
done

while [ "${PREFIX%/}" != "$PREFIX" ]; do PREFIX=${PREFIX%/}; done
case $PREFIX in
    /?*) ;;
    *) die "--prefix must be an absolute directory other than /, got '$PREFIX'" ;;
esac
if [ -n "$DESTDIR" ]; then
    [ -d "$DESTDIR" ] || { say "nothing installed under $DESTDIR"; exit 0; }
    DESTDIR=$(cd "$DESTDIR" && pwd -P)
    [ "$DESTDIR" != / ] || DESTDIR=
fi

ROOT=$DESTDIR$PREFIX
MANIFEST=$ROOT/install-manifest

if [ ! -f "$MANIFEST" ]; then
    if [ -e "$ROOT" ]; then
        die "$ROOT has no install-manifest: it was not made by install.sh, so it is left alone"
    fi
    say "nothing installed at $ROOT"
    exit 0
fi

# The manifest is read in full before anything is removed (it goes with
# the virtualenv).
entries=$(cat "$MANIFEST")
# Only the recorded prefix is removed whole, and only while it still looks
# like a virtualenv.
printf '%s\n' "$entries" | grep -qxF "venv $PREFIX" && [ -f "$ROOT/pyvenv.cfg" ] ||
    die "$MANIFEST does not record a virtualenv at $PREFIX; nothing removed"

systemd_here=
if [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; then
    systemd_here=1
fi
if [ -n "$systemd_here" ] && [ -f "/etc/systemd/system/$UNIT" ]; then
    # Stopped first, so that nothing runs from the virtualenv being removed.
    systemctl disable --now "$UNIT"
    say "stopped and disabled $UNIT"
fi

# Plain files first, then the virtualenv, then the directories, deepest
# first; a directory that still holds something (the configuration, another
# package's files) stays.
printf '%s\n' "$entries" | while IFS= read -r entry; do
    kind=${entry%% *} path=${entry#* }
    case $kind in
        file)
            if [ -e "$DESTDIR$path" ] || [ -L "$DESTDIR$path" ]; then
                rm -f "$DESTDIR$path"
                say "removed $DESTDIR$path"
            fi ;;
    esac
done

rm -rf "$ROOT"
say "removed the virtualenv $ROOT"

printf '%s\n' "$entries" | sed -n 's/^dir //p' | awk '{ print length($0) "\t" $0 }' | sort -rn | cut -f2- |
while IFS= read -r path; do
    if [ -d "$DESTDIR$path" ] && [ -z "$(ls -A "$DESTDIR$path")" ]; then
        rmdir "$DESTDIR$path"
        say "removed the empty directory $DESTDIR$path"
    fi
done

if [ -n "$systemd_here" ]; then
    systemctl daemon-reload
fi

if [ -e "$DESTDIR/etc/monitoring-agent.conf" ]; then
    say "kept $DESTDIR/etc/monitoring-agent.conf (the configuration); remove it by hand if unwanted"
fi
say "done"
