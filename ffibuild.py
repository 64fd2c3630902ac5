"""cffi builder for the C core (out-of-line API mode).

Imports nothing from the package: the one declaration source is
csrc/agent_api.h, fed unchanged to cdef() and #included by the C sources,
so cffi checks every struct layout against the compiler.
"""

import glob
import os

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
CSRC = os.path.join(HERE, "csrc")

ffibuilder = FFI()
with open(os.path.join(CSRC, "agent_api.h")) as f:
    ffibuilder.cdef(f.read())

ffibuilder.set_source(
    "agent._agent_c",
    '#include <stdint.h>\n#include <stddef.h>\n#include "agent_api.h"\n',
    # Relative paths: setuptools refuses absolute source paths in a wheel build.
    sources=sorted(os.path.relpath(p, HERE) for p in glob.glob(os.path.join(CSRC, "*.c"))),
    include_dirs=[os.path.relpath(CSRC, HERE)],
    extra_compile_args=["-std=c11", "-O2", "-Wall", "-Wextra"],
    # Stripped at link time, so every build (pip install, make wheel,
    # cibuildwheel) ships the same small .so; the C tests and the fuzzers
    # build their own binaries with debug information (tests/c/run.sh).
    extra_link_args=["-s"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
