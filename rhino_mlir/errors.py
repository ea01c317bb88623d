"""One exception family; the CLI prints the message as one line and exits non-zero."""


class RhinoError(Exception):
    """A user-facing error: one line, lowercase, names the culprit and the fix."""


class ParseError(RhinoError):
    """Malformed IR (message carries line:column)."""


class PassError(RhinoError):
    """A pass failed on its input; the message starts with the pass name.

    `op` (optional) is the offending MLIR operation, so `--verify-diagnostics`
    can match the error to the source line of the op."""

    def __init__(self, msg: str, op=None):
        super().__init__(msg)
        self.op = op


class PipelineError(RhinoError):
    """Malformed pass pipeline, unknown pass or bad option."""


class ShardingError(RhinoError):
    """An invalid sharding annotation (unknown mesh/axis, rank mismatch, axis reused)."""


class UnsupportedError(RhinoError):
    """Input that rhino_mlir does not handle (dynamic shapes, ...)."""


def one_line_warnings() -> None:
    """CLI warnings as one line each ('warning: rhino: no sharding rule for ...')."""
    import warnings
    warnings.formatwarning = lambda message, *args, **kwargs: f"warning: {message}\n"
