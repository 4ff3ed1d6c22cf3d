"""The benchmark sweep (being split into modules: see ``sweep``)."""

from .sweep import *  # noqa: F403
from .sweep import LABEL_FREE_KEYS, METHODS, RESULT_KEYS, SUMMARY_METRICS, _device_type, sweep_settings  # noqa: F401
