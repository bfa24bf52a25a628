"""deMNISTify: live recognition of multi-digit handwritten numbers, backed by MLflow."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("demnistify")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
