# syntax=docker/dockerfile:1
# The monitoring-agent image: the wheel (with its C extension) built in one
# stage, installed alone into a clean python:3.12-slim in the next.
#
#   docker build -t monitoring-agent:0.1.0 .
#   docker run -d --network=host --pid=host -v /proc:/host/proc:ro \
#       -v /sys:/host/sys:ro -v /:/host/root:ro,rslave \
#       --read-only --cap-drop ALL monitoring-agent:0.1.0
#
# As node_exporter's documentation runs it in a container: the host's /proc,
# /sys and / at /host/proc, /host/sys and /host/root (rslave: a mount made on
# the host later shows inside too), and CMD pointing the agent at them.
#
# The build itself is not run by the tests (no container engine where they
# run).  tests/test_deploy.py checks this file's structure and builds the
# wheel from exactly the files copied below; docs/OPERATIONS.md ("In a
# container") explains the run flags.

FROM python:3.12-slim AS builder
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Only what the build reads (.dockerignore keeps the context to these too).
COPY pyproject.toml setup.py ffibuild.py README.md ./
COPY csrc/ csrc/
COPY src/ src/
# AGENT_REQUIRE_C=1: a failed C build fails the image build instead of
# falling back, unnoticed, to the pure-Python backend.  The wheels of the
# runtime dependencies (cffi, pycparser, isal where it has wheels) land in
# /wheels too, so the runtime stage needs no compiler and no index.
RUN AGENT_REQUIRE_C=1 pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.12-slim
# The root file system is read-only in the DaemonSet: no __pycache__ to write
# (pip compiled the package's bytecode at install time).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=builder /wheels /wheels
# One collection with the C backend, as a smoke test of the installed image
# (the builder's /proc stands in for the host's).
RUN pip install --no-cache-dir --no-index --find-links /wheels monitoring-agent \
    && rm -rf /wheels \
    && monitoring-agent --config /dev/null --once --backend c > /dev/null
# nobody:nogroup, numeric so that Kubernetes' runAsNonRoot can check it; the
# agent writes no file and needs no capability (port 8080 is above 1024).
USER 65534:65534
EXPOSE 8080
# python:3.12-slim has no curl.  Assumes the default listen port and plain
# HTTP; with --listen, TLS or an --allow list without 127.0.0.1, change it
# or run with --no-healthcheck (Kubernetes ignores it and uses its probes).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; r = urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4); sys.exit(0 if r.status == 200 else 1)"]
ENTRYPOINT ["monitoring-agent"]
CMD ["--path.procfs", "/host/proc", "--path.sysfs", "/host/sys", "--path.rootfs", "/host/root"]
