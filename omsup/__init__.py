"""omsup: the vendor's OMS CE upgrade and rollback procedures as ordered, verified pytest runbooks."""

__version__ = "0.1.0"
