"""The sweep's job list: one :class:`BenchJob` per method × category × seed, in a canonical
order (methods in book order, categories in MVTec AD's), and its shards (``--shard i/n``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..config import Profile, data_root, get_profile
from ..data import TEXTURE_CATEGORIES, ensure_textures
from ..data import categories as category_folders
from ..methods import METHODS
from ..published import CATEGORY_ORDER

#: The methods in the order the book presents them; others follow alphabetically.
BOOK_ORDER = ("uninformed_students", "stfpm", "fvv", "simple_student")

SHARD_HELP = "--shard must look like 2/3 with 1 ≤ i ≤ n"


@dataclass(frozen=True)
class BenchJob:
    """One run of the sweep: a method on a category with a seed."""

    method: str
    category: str
    seed: int

    @property
    def key(self) -> str:
        """The run's file name without ``.json``, e.g. ``stfpm__brick__seed42``."""
        return f"{self.method}__{self.category}__seed{self.seed}"

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "category": self.category,
            "seed": self.seed,
            "key": self.key,
        }

    def describe(self) -> str:
        return f"{self.method} {self.category} seed {self.seed}"


def method_rank(name: str) -> tuple:
    """Sort key: :data:`BOOK_ORDER`, then alphabetical."""
    return (BOOK_ORDER.index(name), "") if name in BOOK_ORDER else (len(BOOK_ORDER), name)


def category_rank(name: str) -> tuple:
    """MVTec AD's order, then the textures dataset's, then alphabetical."""
    if name in CATEGORY_ORDER:
        return (0, CATEGORY_ORDER.index(name), "")
    if name in TEXTURE_CATEGORIES:
        return (1, TEXTURE_CATEGORIES.index(name), "")
    return (2, 0, name)


def other_categories(profile: str | Profile | None, data: str | Path) -> list[str]:
    """The categories a method's chapter trains besides the profile's own, so that chapter
    9's sweep finds those runs in the store instead of training them all at once.

    On the embedded textures dataset (the quick profile): its other categories found in
    ``data`` (seconds to a minute per run on a CPU; folders a reader added are left to
    chapter 9). On MVTec AD (the full profile): none (a category costs a GPU minutes to
    hours per method; chapter 9's sweep trains the categories it is given)."""
    chosen = profile if isinstance(profile, Profile) else get_profile(profile)
    if chosen.dataset != "textures":
        return []
    found = set(category_folders(data))
    return [c for c in TEXTURE_CATEGORIES if c in found and c != chosen.category]


def unique(values: Iterable) -> list:
    """``values`` without repeats, in their first order."""
    return list(dict.fromkeys(values))


def method_names(methods: Iterable[str] | None = None) -> list[str]:
    """The given methods (default: every registered one not starting with ``_``), checked
    and put in book order (:data:`BOOK_ORDER`), the others alphabetically after them."""
    if methods is None:
        methods = [name for name in METHODS if not name.startswith("_")]
    methods = unique(methods)
    unknown = [name for name in methods if name not in METHODS]
    if unknown:
        raise ValueError(
            f"Unknown method(s) {', '.join(map(repr, unknown))}: choose from "
            f"{', '.join(sorted(METHODS))}."
        )
    return sorted(methods, key=method_rank)


def default_data_root(profile: str | None = None) -> Path:
    """The profile's dataset root: the embedded textures (generated if needed) for
    ``quick``, ``DATA/mvtec`` for ``full`` (download it first: ``python -m stad_utils
    download``)."""
    chosen = get_profile(profile)
    if chosen.dataset == "textures":
        return ensure_textures()
    return data_root() / "mvtec"


def jobs(
    methods: Iterable[str] | None = None,
    categories: Iterable[str] | None = None,
    seeds: Iterable[int] | None = None,
    *,
    data: str | Path | None = None,
    profile: str | None = None,
) -> list[BenchJob]:
    """The sweep's jobs, methods × categories × seeds, in a canonical order.

    Methods default to every registered method (book order), categories to every category
    folder of ``data`` (MVTec order, then the textures', then alphabetical), seeds to the
    profile's seed. The order is method, then category, then seed, whatever order the
    arguments come in, so that shards computed on different machines agree.
    """
    names = method_names(methods)
    if categories is None:
        if data is None:
            raise ValueError("Give the categories or the dataset root to find them in.")
        categories = category_folders(data)
        if not categories:
            raise ValueError(
                f"No category folders (CATEGORY/train/good) under {data}: give --data the "
                "dataset root, e.g. data/textures or data/mvtec."
            )
    cats = sorted(unique(str(c) for c in categories), key=category_rank)
    seed_list = sorted(unique(int(s) for s in seeds)) if seeds else [get_profile(profile).seed]
    if not names or not cats:
        raise ValueError("A sweep needs at least one method and one category.")
    return [BenchJob(m, c, s) for m in names for c in cats for s in seed_list]


def parse_shard(text: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """``"2/3"`` → ``(2, 3)``; ``None`` → ``None`` (no sharding). Raises ``ValueError``
    with :data:`SHARD_HELP` unless it is ``i/n`` with 1 ≤ i ≤ n."""
    if text is None:
        return None
    if isinstance(text, tuple):
        index, count = text
    else:
        parts = str(text).strip().split("/")
        try:
            index, count = (int(part) for part in parts)
        except ValueError:
            raise ValueError(f"{SHARD_HELP}; got {text!r}.") from None
    if not 1 <= index <= count:
        raise ValueError(f"{SHARD_HELP}; got {text!r}.")
    return index, count


def shard_jobs(all_jobs: list[BenchJob], shard: str | tuple[int, int] | None) -> list[BenchJob]:
    """Shard ``i/n`` of the job list: every n-th job starting at index i-1 (round-robin)."""
    parsed = parse_shard(shard)
    if parsed is None:
        return list(all_jobs)
    index, count = parsed
    return list(all_jobs[index - 1 :: count])
