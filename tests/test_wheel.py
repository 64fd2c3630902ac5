"""The release files (make wheel, from a fresh checkout): an sdist, and one
wheel for the stable ABI and the oldest manylinux policy its glibc symbols
allow, whose stripped extension runs the C backend under every CPython from
3.10 on that this machine has, installed with no compiler around; the sdist
installed with no compiler runs on Python and says why in one line.

Each test installs into a fresh venv, as a user would.  The wheel is built
once per session; the wheel's dependencies (cffi, isal) are fetched once per
Python version, then every install runs with --no-index."""

from __future__ import annotations

import glob
import os
import re
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from backends import load_backend
from test_packaging import NO_COMPILER, copy_checkout

pytestmark = pytest.mark.slow

BUILD_INFO_C = 'agent_build_info{version="0.1.0",backend="c"} 1'
BUILD_INFO_PYTHON = 'agent_build_info{version="0.1.0",backend="python"} 1'
# The range; any newer CPython pyenv has is tried too.
REQUIRED_VERSIONS = ("3.10", "3.11", "3.12", "3.13")


def find_cpython(version: str) -> str | None:
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    found = sorted(glob.glob(str(pyenv / "versions" / f"{version}.*" / "bin" / "python3")),
                   key=lambda p: [int(n) for n in re.findall(r"\d+", Path(p).parent.parent.name)])
    if found:
        return found[-1]
    return shutil.which(f"python{version}")


def versions_to_try() -> list[str]:
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    newer = {m.group(1) for p in glob.glob(str(pyenv / "versions" / "3.*"))
             if (m := re.match(r"(3\.(\d+))\.", Path(p).name)) and int(m.group(2)) > 13}
    return list(REQUIRED_VERSIONS) + sorted(newer, key=lambda v: int(v.split(".")[1]))


def run(cmd, **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("timeout", 600)
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)


@pytest.fixture(scope="session")
def release(tmp_path_factory):
    """make wheel in a copy of the checkout: (checkout, sdist, wheel)."""
    load_backend("c")  # the build needs a compiler: skips without one, fails in CI
    checkout = copy_checkout(tmp_path_factory.mktemp("checkout"))
    made = run(["make", "-C", checkout, "wheel", f"PYTHON={sys.executable}"])
    assert made.returncode == 0, made.stdout + made.stderr
    sdists = sorted((checkout / "dist").glob("*.tar.gz"))
    wheels = sorted((checkout / "dist").glob("*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, sorted((checkout / "dist").iterdir())
    assert sorted((checkout / "dist").iterdir()) == sorted(sdists + wheels)  # nothing else left
    return checkout, sdists[0], wheels[0]


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory, release):
    """The wheel's dependencies, and setuptools for a build from the sdist,
    per Python version, fetched once."""
    _, _, wheel = release
    # By name from the wheel's metadata, not the wheel itself: a wheel that
    # does not install on some version must fail its test there, not skip.
    with zipfile.ZipFile(wheel) as zf:
        metadata = zf.read(next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA")))
    requirements = [line.split(":", 1)[1].strip() for line in metadata.decode().splitlines()
                    if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert any(r.startswith("cffi") for r in requirements), requirements
    house = tmp_path_factory.mktemp("wheelhouse")
    fetched = set()

    def for_version(version: str) -> Path:
        if version not in fetched:
            got = run([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
                       "--python-version", version, "--dest", house, *requirements, "setuptools"])
            if got.returncode != 0:
                pytest.skip(f"cannot fetch the wheel's dependencies for Python {version}: "
                            f"{got.stderr.strip().splitlines()[-1:]}")
            fetched.add(version)
        return house
    return for_version


def fresh_venv(python: str, where: Path) -> tuple[Path, dict]:
    """A venv without pip (the test's pip installs into it) and an
    environment with nothing but the venv on PATH: no compiler anywhere."""
    made = run([python, "-m", "venv", "--without-pip", where])
    assert made.returncode == 0, made.stderr
    env = {"PATH": str(where / "bin"), "HOME": os.environ.get("HOME", "/"), "LANG": "C.UTF-8", **NO_COMPILER}
    assert not [c for c in ("cc", "gcc", "clang") if shutil.which(c, path=env["PATH"])]
    return where / "bin" / "python", env


def pip_install(venv_python: Path, env: dict, house: Path, target: Path, *options: str):
    return run([sys.executable, "-m", "pip", "--python", venv_python, "install", "--no-index",
                "--find-links", house, "--no-cache-dir", *options, target], env=env)


def elf_section_names(data: bytes) -> list[str]:
    """The section names of a 64-bit little-endian ELF file."""
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize) for i in range(shnum)]
    strtab_offset, strtab_size = headers[shstrndx][4], headers[shstrndx][5]
    strtab = data[strtab_offset:strtab_offset + strtab_size]
    return [strtab[h[0]:strtab.index(b"\0", h[0])].decode() for h in headers]


def test_the_wheel_is_abi3_and_the_oldest_manylinux_its_symbols_allow(release):
    checkout, _, wheel = release
    name, version, python_tag, abi_tag, platform_tags = wheel.name[:-len(".whl")].split("-")
    assert (name, version, python_tag, abi_tag) == ("monitoring_agent", "0.1.0", "cp310", "abi3")
    platforms = platform_tags.split(".")
    assert all(re.fullmatch(r"manylinux(_2_\d+|1|2010|2014)_x86_64", p) for p in platforms), platforms
    # auditwheel says which policy the extension's versioned glibc symbols
    # need; the wheel must be tagged for that one, not a newer one.
    shown = run([checkout / ".venv/bin/auditwheel", "show", wheel])
    assert shown.returncode == 0, shown.stderr
    needed = re.search(r'platform tag:\s*"(manylinux_2_\d+_x86_64)"', shown.stdout)
    assert needed, shown.stdout
    assert needed.group(1) in platforms
    assert max(int(re.search(r"_2_(\d+)_", p).group(1)) for p in platforms if "_2_" in p) \
        == int(re.search(r"_2_(\d+)_", needed.group(1)).group(1))


def test_the_wheel_carries_one_stripped_stable_abi_extension(release):
    _, _, wheel = release
    with zipfile.ZipFile(wheel) as zf:
        extensions = [n for n in zf.namelist() if n.endswith(".so")]
        assert extensions == ["agent/_agent_c.abi3.so"]
        sections = elf_section_names(zf.read(extensions[0]))
    assert ".dynsym" in sections  # PyInit__agent_c is still exported
    assert ".symtab" not in sections
    assert not [s for s in sections if s.startswith(".debug")], sections


def test_python_m_build_at_the_root_runs_the_front_end(release):
    # The working directory comes first on sys.path: a build.py there was
    # imported instead of the build package.
    checkout, _, _ = release
    r = run([checkout / ".venv/bin/python", "-m", "build", "--version"], cwd=checkout, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("build "), r.stdout


def test_the_sdist_carries_what_the_build_needs(release):
    import tarfile
    _, sdist, _ = release
    with tarfile.open(sdist) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    assert {"setup.py", "ffibuild.py", "pyproject.toml", "csrc/agent_api.h",
            "src/agent/procfs/cbackend.py"} <= names
    assert not [n for n in names if n.startswith("tests/")]


@pytest.mark.parametrize("version", versions_to_try())
def test_the_wheel_installs_and_runs_on_the_c_backend_with_no_compiler(version, release, wheelhouse,
                                                                        tmp_path):
    python = find_cpython(version)
    if python is None:
        pytest.skip(f"CPython {version} is not installed here (pyenv install {version} to test it)")
    _, _, wheel = release
    house = wheelhouse(version)
    venv_python, env = fresh_venv(python, tmp_path / "venv")
    installed = pip_install(venv_python, env, house, wheel)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    agent = run([tmp_path / "venv/bin/monitoring-agent", "--config", "/dev/null", "--once"],
                env=env, cwd=tmp_path, timeout=60)
    assert agent.returncode == 0, agent.stderr
    assert BUILD_INFO_C in agent.stdout.splitlines()
    assert agent.stderr == ""
    # The interpreter asked for, not another one on the way.
    ran = run([venv_python, "-c", "import sys, agent._agent_c; print(sys.version_info[:2])"], env=env)
    assert ran.stdout.strip() == str(tuple(int(n) for n in version.split(".")))


def test_the_sdist_installs_without_a_compiler_and_says_why_at_start(release, wheelhouse, tmp_path):
    _, sdist, _ = release
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    house = wheelhouse(version)
    venv_python, env = fresh_venv(sys.executable, tmp_path / "venv")
    installed = pip_install(venv_python, env, house, sdist, "--verbose")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "C extension was not built" in installed.stdout + installed.stderr
    agent = run([tmp_path / "venv/bin/monitoring-agent", "--config", "/dev/null", "--once"],
                env=env, cwd=tmp_path, timeout=60)
    assert agent.returncode == 0, agent.stderr
    assert BUILD_INFO_PYTHON in agent.stdout.splitlines()
    [line] = agent.stderr.splitlines()
    assert "not built when monitoring-agent was installed (no C compiler" in line
    assert "install a C compiler and the Python headers" in line and "reinstall" in line
    assert "wheel" in line
