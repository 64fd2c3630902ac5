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
        self._remove_earlier_outputs()
        try:
            super().run()
        except Exception as exc:  # compiler missing, headers missing, ...
            self._give_up(exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._give_up(exc)

    def _remove_earlier_outputs(self):
        # An extension left in build/lib*/ by an earlier build is newer than
        # the sources, so setuptools would skip compiling it as "up to date"
        # and ship it: an install that cannot compile would carry an old .so
        # instead of none.  An editable install's copy in the source tree,
        # likewise.  Whatever this build cannot make must not be there.
        build_py = self.get_finalized_command("build_py")
        for ext in self.extensions:
            filename = self.get_ext_filename(self.get_ext_fullname(ext.name))
            stale = [os.path.join(self.build_lib, filename)]
            if self.inplace:
                package = ext.name.rpartition(".")[0]
                stale.append(os.path.join(build_py.get_package_dir(package), os.path.basename(filename)))
            for path in stale:
                if os.path.exists(path):
                    os.remove(path)

    def _give_up(self, exc):
        if os.environ.get("AGENT_REQUIRE_C") == "1":
            raise
        print(f"WARNING: monitoring-agent's C extension was not built ({exc}): the agent "
              "will run on its pure-Python backend.  For the C backend, install a C compiler "
              "and the Python headers, then reinstall.")


setup(
    cffi_modules=["ffibuild.py:ffibuilder"],
    cmdclass={"build_ext": OptionalBuildExt},
    # cffi builds the extension for the stable ABI (_agent_c.abi3.so); this
    # tags the wheel so, and one wheel serves every CPython from 3.10 on.
    options={"bdist_wheel": {"py_limited_api": "cp310"}},
)
