# lit configuration: every .mlir under lit_tests/ runs its RUN lines with lit's
# internal shell (lit 23 rejects ShTest(True)), finding rhino-opt and filecheck on PATH.
import os
import sys

import lit.formats

config.name = "rhino_mlir"
config.test_format = lit.formats.ShTest(False)
config.suffixes = [".mlir"]
config.excludes = ["Inputs"]
config.test_source_root = os.path.dirname(__file__)
# the venv that runs lit also holds rhino-opt and filecheck; the caller's PATH follows
config.environment["PATH"] = os.pathsep.join(
    [os.path.dirname(sys.executable), os.environ.get("PATH", "")])
