"""Where the compiled engine and the worker binary are found."""
import os

from . import _virga  # noqa: F401  (the pybind11 module, built next to this file)

try:
    from ._build_info import VIRGA_BINARY as _BUILT_BINARY
except ImportError:  # running from the source tree without a build
    _BUILT_BINARY = ""
if _BUILT_BINARY and not os.path.isabs(_BUILT_BINARY):  # installed by pip: inside the package
    _BUILT_BINARY = os.path.join(os.path.dirname(os.path.abspath(__file__)), _BUILT_BINARY)


def worker_binary():
    """Path of the `virga` executable worker functions run: $VIRGA_BINARY, else the one built
    with this module."""
    path = os.environ.get("VIRGA_BINARY") or _BUILT_BINARY
    if not path or not os.access(path, os.X_OK):
        raise _virga.Error(
            f"virga executable not found ({path or 'unset'}): build it (make build) or set $VIRGA_BINARY")
    return path


TRAIN_DEFAULTS = _virga.train_defaults()
