"""stad_utils: the package behind the course book *Student–Teacher Anomaly Detection*."""

__version__ = "0.1.0"
