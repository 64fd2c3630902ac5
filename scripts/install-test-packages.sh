#!/usr/bin/env bash
# The Debian packages the integration suites use, installed where missing:
# the same command for a developer (as root, or with sudo) and for CI
# (.ci/run).  Without them those suites skip, each with its reason (README).
set -euo pipefail

need=()
command -v promtool >/dev/null || need+=(prometheus)                 # promtool, and the server
command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)  # and amtool
command -v cc >/dev/null || need+=(gcc)                              # the C extension
command -v systemd-analyze >/dev/null || need+=(systemd)             # the unit's checks
command -v openssl >/dev/null || need+=(openssl)                     # the TLS tests' CA
command -v clang >/dev/null || need+=(clang)                         # libFuzzer (make fuzz)
command -v victoria-metrics >/dev/null || need+=(victoria-metrics)   # the push round-trips
command -v prometheus-node-exporter >/dev/null || need+=(prometheus-node-exporter)  # the oracle of the host collectors
command -v fusermount3 >/dev/null || need+=(fuse3)                   # libfuse3: the hung FUSE mount (filesystem)
command -v prometheus-process-exporter >/dev/null || need+=(prometheus-process-exporter)  # the processes collector's benchmark peer
command -v systemd-nspawn >/dev/null || need+=(systemd-container)   # a real systemd booted in a container (systemd collector)
command -v mmdebstrap >/dev/null || command -v debootstrap >/dev/null || need+=(mmdebstrap)  # ... and its Debian tree
command -v busctl >/dev/null || need+=(systemd)                      # ... and the tests' own D-Bus calls
command -v dbus-daemon >/dev/null || need+=(dbus-daemon)             # a real bus without systemd on it
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian ships libFuzzer's runtime apart from clang, per version.
if ! compgen -G "$(clang -print-resource-dir)/lib/linux/libclang_rt.fuzzer-*.a" >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "libclang-rt-$(clang -dumpversion | cut -d. -f1)-dev" >/dev/null
fi
