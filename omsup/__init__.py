"""omsup: the vendor's OMS CE upgrade and rollback procedures as ordered, verified pytest runbooks."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("omsup")
except PackageNotFoundError:  # a checkout that was not installed
    __version__ = "0+unknown"
