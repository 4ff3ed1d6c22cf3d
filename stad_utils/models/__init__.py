"""Models: Uninformed Students' patch networks and decoder, and fast dense extraction.

``students`` (Simple Student, 1×1 adapters) is a submodule of its own:
``from stad_utils.models.students import simple_student``.
"""

from .dense import DenseExtractor, naive_dense, pad_images
from .patch_networks import (
    P17_TABLE_FIX,
    P65_TABLE_FIX,
    RECEPTIVE_FIELDS,
    SEED_P65_TABLE,
    TABLE_SOURCES,
    Decoder,
    LayerRow,
    PatchNetwork,
    architecture_table,
    decoder,
    patch_network,
)

__all__ = [
    "DenseExtractor",
    "naive_dense",
    "pad_images",
    "Decoder",
    "LayerRow",
    "PatchNetwork",
    "architecture_table",
    "decoder",
    "patch_network",
    "P17_TABLE_FIX",
    "P65_TABLE_FIX",
    "RECEPTIVE_FIELDS",
    "SEED_P65_TABLE",
    "TABLE_SOURCES",
]
