"""Only here because cffi_modules cannot be declared in pyproject.toml yet.

The C extension is optional, as in simplejson and msgpack: a machine without
a C compiler still installs the pure-Python backend, unless
AGENT_REQUIRE_C=1 (CI) makes a failed build fatal.
"""

import os

from setuptools import setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    def run(self):
        try:
            super().run()
        except Exception as exc:  # compiler missing, headers missing, ...
            self._give_up(exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._give_up(exc)

    def _give_up(self, exc):
        if os.environ.get("AGENT_REQUIRE_C") == "1":
            raise
        print(f"WARNING: C extension not built ({exc}); "
              "monitoring-agent will use its pure-Python backend")


setup(cffi_modules=["ffibuild.py:ffibuilder"], cmdclass={"build_ext": OptionalBuildExt})
