"""A dataset of dict samples held in memory, for training tests (ARCHITECTURE.md, "The
batch"): good images only, empty masks."""

import torch
from torch.utils.data import Dataset


class GoodImages(Dataset):
    """``images (N, 3, H, W)`` as dict samples; or ``n`` random ``size``² images."""

    def __init__(self, n: int = 12, seed: int = 0, size: int = 32, images=None):
        if images is None:
            images = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        image = self.images[index]
        return {
            "image": image,
            "mask": torch.zeros(1, *image.shape[-2:]),
            "label": 0,
            "defect_type": "good",
            "path": f"memory/{index:03d}.png",
        }
