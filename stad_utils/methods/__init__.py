"""The anomaly detectors, one file per method, on the shared :class:`Method` base."""

from .base import METHODS, Method
from .fvv import FeatureVectorsVariance
from .simple_student import SimpleStudent
from .stfpm import STFPM

__all__ = ["METHODS", "Method", "STFPM", "FeatureVectorsVariance", "SimpleStudent"]
