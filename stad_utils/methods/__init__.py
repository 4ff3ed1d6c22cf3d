"""The anomaly detectors, one file per method, on the shared :class:`Method` base."""

from .base import METHODS, Method
from .fvv import FeatureVectorsVariance
from .simple_student import SimpleStudent
from .stfpm import STFPM
from .uninformed_students import UninformedStudents

__all__ = [
    "METHODS",
    "Method",
    "STFPM",
    "FeatureVectorsVariance",
    "SimpleStudent",
    "UninformedStudents",
]
