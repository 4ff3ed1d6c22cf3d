"""What the full profile costs, measured on the CPU, and what that means on a Colab T4.

For each method of the full profile (256² images, the real network widths) and for one
step of the Uninformed Students teachers' pre-training (chapter 3), this prints:

* parameters (all, and trainable);
* FLOPs per image of one training step (forward + backward) and of one prediction,
  counted with ``torch.utils.flop_counter.FlopCounterMode``;
* activation memory per image: the bytes of the tensors autograd saves for the backward
  pass during one training step at batch 1 (``torch.autograd.graph.saved_tensors_hooks``;
  parameters excluded). This is what grows with the batch size. With ``--rss``, real
  steps at batch 1 and 4 (separate processes, Linux) measure how far the resident memory
  rises during the step; the difference per image is a cross-check (it also holds the
  backward pass's temporaries).

FLOPs and saved tensors are counted on PyTorch's ``meta`` device (shapes only, no
arithmetic), so the table takes seconds. The network weights are random: costs do not
depend on their values (no detector is trained here).

Then it estimates each chapter's GPU memory and time on a 16 GB T4 (see ``estimate``):

    time   = Σ over trainings (FLOPs per training image × training images × epochs)
             + test images × FLOPs per prediction, divided by THROUGHPUT
    memory = CUDA context + 4 bytes × (frozen parameters + 2 or 3 × trainable parameters)
             + batch size × activations per image (float32: an upper bound under AMP)

It writes the measurements, the assumptions and every chapter's estimate and cost
drivers to ``book/_data/full_costs.json`` (``--json`` names another file), which the
book's cost boxes (``book/_ext/cost_box.py``) and the tables of ``book/setup.md`` read:
rerun this script when a profile, a method or a network changes (a test compares the
file's settings with the profiles).

Run:  python benchmarks/bench_full_costs.py [--size 256] [--rss [METHOD ...]] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import inspect
import json
import subprocess
import sys
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from stad_utils import backbones
from stad_utils.config import PROFILES
from stad_utils.methods.uninformed_students import UninformedStudents
from stad_utils.runner import RunConfig

REPO = Path(__file__).resolve().parents[1]
BOOK_DATA = REPO / "book" / "_data" / "full_costs.json"

METHODS = ("stfpm", "fvv", "simple_student", "uninformed_students")
T4_MEMORY_GB = 15.0  # of the T4's 16 GB, what PyTorch can use
# Assumed sustained throughput of a T4 under AMP: 8 TFLOPS, i.e. its fp32 peak (8.1) or
# about an eighth of its fp16 tensor-core peak (65): convolution-heavy training at small
# batches rarely reaches more. Times below scale with 1 / THROUGHPUT.
THROUGHPUT = 8e12
THROUGHPUT_SOURCE = (
    "an assumption, not a measurement: the T4's float32 peak is 8.1 TFLOPS, about an "
    "eighth of its float16 tensor-core peak of 65 (NVIDIA's T4 datasheet)"
)
# Colab does not publish its free GPU quota; sessions of a few hours usually run through.
# A chapter "fits" when its estimate is at most this long (and within T4_MEMORY_GB).
FREE_SESSION_HOURS = 3.0
CUDA_CONTEXT_GB = 0.5  # CUDA context and cuDNN workspace, roughly
# MVTec AD carpet (the full profile's category): 280 good training images, 10 % of them
# held out for validation; 117 test images.
TRAIN_IMAGES, VAL_IMAGES, TEST_IMAGES = 252, 28, 117
TEACHER_STEPS, TEACHER_BATCH = 20_000, 64  # the full profile's teacher pre-training
PAPER_EPOCHS = 100  # Uninformed Students' students in the paper


@contextlib.contextmanager
def random_resnet_weights():
    """Build ResNet teachers with random weights: costs do not depend on the values, and
    this benchmark must run where torchvision's ImageNet file cannot be downloaded."""
    saved = dict(backbones.BACKBONES)
    for name in ("resnet18", "wide_resnet50_2"):
        backbones.BACKBONES[name] = dataclasses.replace(saved[name], load_weights=lambda net: None)
    try:
        yield
    finally:
        backbones.BACKBONES.update(saved)


def build(method: str, size: int, **options) -> tuple[nn.Module, RunConfig]:
    config = RunConfig(
        method=method,
        data="",
        category="carpet",
        profile="full",
        image_size=size,
        method_options=options,
    ).resolved()
    with random_resnet_weights():
        return config.build_method(), config


def count_parameters(module: nn.Module) -> tuple[int, int]:
    total = sum(p.numel() for p in module.parameters())
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return total, trainable


def saved_activation_bytes(step) -> int:
    """Bytes of the distinct non-parameter tensors autograd saves while ``step`` runs."""
    seen: dict[int, torch.Tensor] = {}

    def pack(tensor: torch.Tensor):
        if not isinstance(tensor, nn.Parameter):
            seen.setdefault(id(tensor), tensor)  # the dict keeps it alive: ids stay unique
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        step()
    return sum(t.numel() * t.element_size() for t in seen.values())


def training_step(method: nn.Module, images: torch.Tensor):
    def step():
        method.loss(images).backward()

    return step


def prediction(method: nn.Module, images: torch.Tensor) -> None:
    """The computation of a prediction. Uninformed Students' eq. 8 needs validation
    statistics (not on the meta device); it is element-wise, so e and v cost the same."""
    if method.name == "uninformed_students":
        for index in range(len(method.scales)):
            method.error_and_variance(index, images)
    else:
        method.anomaly_map(images)


def measure_method(method_name: str, size: int) -> dict:
    method, config = build(method_name, size)
    total, trainable = count_parameters(method)
    method = method.to("meta").train()
    images = torch.empty(1, 3, size, size, device="meta")
    with FlopCounterMode(display=False) as counter:
        training_step(method, images)()
    train_flops = counter.get_total_flops()
    activations = saved_activation_bytes(training_step(method, images))
    method.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        prediction(method, images)
    return {
        "name": method_name,
        "parameters": total,
        "trainable": trainable,
        "train_flops": train_flops,
        "predict_flops": counter.get_total_flops(),
        "activation_bytes": activations,
        "batch_size": config.batch_size,
        "epochs": config.epochs,
        "optimizer": config.optimizer,  # decided by RunConfig.create
    }


def measure_teacher_step(p: int = 65, measured_batch: int = 4) -> dict:
    """One pre-training step of a full-width Uninformed Students teacher (chapter 3):
    64 triplets of p×p patches, the distillation target from ResNet-18 at 224².

    Counted on real CPU tensors (the step records its loss parts with ``.item()``, which
    the meta device cannot do) at ``measured_batch`` triplets and scaled to 64: every
    term is per triplet except the compactness loss over 128-d descriptors, negligible.
    """
    from stad_utils.methods.patch_teacher import PatchTeacher

    with random_resnet_weights():
        teacher = PatchTeacher(p, backbone="resnet18", target_size=224, width=1.0, seed=0)
    total, trainable = count_parameters(teacher)
    teacher.train()
    batch = {key: torch.rand(measured_batch, 3, p, p) for key in ("anchor", "positive", "negative")}

    def step():
        teacher.batch_loss(batch, torch.device("cpu"))[0].backward()

    with FlopCounterMode(display=False) as counter:
        step()
    scale = TEACHER_BATCH / measured_batch
    return {
        "name": f"US teacher p={p}, one step of {TEACHER_BATCH} triplets",
        "parameters": total,
        "trainable": trainable,
        "train_flops": counter.get_total_flops() * scale,
        "activation_bytes": saved_activation_bytes(step) * scale,
    }


def step_rss_growth(method_name: str, size: int, batch: int) -> float:
    """How far (MB) the resident memory of a fresh process rises above its level before
    one real training step at ``batch``, at its peak during the step (Linux: the peak,
    VmHWM, is reset through /proc/self/clear_refs just before the step)."""
    code = (
        "import re, sys, torch\n"
        "sys.path.insert(0, 'benchmarks')\n"
        "from bench_full_costs import build\n"
        "def status(key):\n"
        "    text = open('/proc/self/status').read()\n"
        "    return int(re.search(key + r':\\s+(\\d+)', text).group(1))\n"
        f"method, _ = build({method_name!r}, {size})\n"
        f"images = torch.rand({batch}, 3, {size}, {size})\n"
        "method.train()\n"
        "before = status('VmRSS')\n"
        "open('/proc/self/clear_refs', 'w').write('5')\n"
        "method.loss(images).backward()\n"
        "print(status('VmHWM') - before)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(result.stderr[-2000:])
    return int(result.stdout.split()[-1]) / 1024  # kB -> MB


def optimizer_copies(optimizer: str) -> int:
    """Float tensors per trainable parameter: weight, gradient, and the optimizer's state
    (SGD with momentum: 1 buffer; Adam: 2)."""
    return 2 + (2 if optimizer == "adam" else 1)


def training_memory_gb(row: dict, batch: int) -> float:
    frozen = row["parameters"] - row["trainable"]
    weights = 4 * (frozen + optimizer_copies(row["optimizer"]) * row["trainable"])
    return CUDA_CONTEXT_GB + (weights + batch * row["activation_bytes"]) / 1e9


def training_hours(row: dict, epochs: int | None = None) -> float:
    epochs = row["epochs"] if epochs is None else epochs
    # training images, plus a validation prediction per epoch (model selection)
    flops = epochs * (TRAIN_IMAGES * row["train_flops"] + VAL_IMAGES * row["predict_flops"])
    flops += TEST_IMAGES * row["predict_flops"]
    return flops / THROUGHPUT / 3600


def estimate(rows: dict, teacher_rows: list[dict]) -> list[tuple[str, float, float, str]]:
    """Per chapter (its notebook's name): (chapter, GB, hours, what runs) on a T4."""
    teacher_hours = [TEACHER_STEPS * t["train_flops"] / THROUGHPUT / 3600 for t in teacher_rows]
    # a teacher step is one batch of 64 triplets, trained with Adam
    teacher_gb = [training_memory_gb({**t, "optimizer": "adam"}, batch=1) for t in teacher_rows]

    def mem(*names):
        return max(training_memory_gb(rows[n], rows[n]["batch_size"]) for n in names)

    def hours(*names):
        return sum(training_hours(rows[n]) for n in names)

    us = rows["uninformed_students"]
    return [
        ("01_task_and_data", CUDA_CONTEXT_GB, 0.0, "reading the data, nothing trained"),
        ("02_measuring_detectors", 0.0, 0.0, "hand-made anomaly maps"),
        ("02b_the_field", CUDA_CONTEXT_GB, 0.0, "two training-free baselines"),
        ("03_descriptive_teacher", teacher_gb[-1], teacher_hours[-1], "one p = 65 teacher"),
        ("04_dense_features", CUDA_CONTEXT_GB, 0.0, "untrained networks on one image"),
        (
            "05_uninformed_students",
            max(mem("uninformed_students"), *teacher_gb),
            sum(teacher_hours) + training_hours(us),
            "3 teachers (cached afterwards), then 3 scales × 3 students",
        ),
        ("06_stfpm", mem("stfpm"), hours("stfpm"), "STFPM"),
        (
            "07_feature_vectors_variance",
            mem("fvv", "stfpm"),
            hours("fvv", "stfpm", "simple_student"),
            "FVV, with STFPM and Simple Student for comparison",
        ),
        (
            "08_simple_student",
            mem("simple_student"),
            hours("simple_student", "stfpm"),
            "Simple Student, with STFPM for comparison",
        ),
        (
            "09_comparing_methods",
            mem(*METHODS),
            hours(*METHODS),
            "the sweep: the four methods on one category (teachers cached)",
        ),
    ]


def resolved_settings(method: str, profile: str) -> RunConfig:
    return RunConfig(method=method, data="", category="", profile=profile).resolved()


def us_option(name: str, profile: str):
    """An Uninformed Students option in a profile (else the constructor's default)."""
    options = resolved_settings("uninformed_students", profile).method_options
    default = inspect.signature(UninformedStudents.__init__).parameters[name].default
    return options.get(name, default)


def cost_drivers() -> dict[str, list[str]]:
    """Per chapter: the settings that drive its cost, with their quick and full values,
    read from the profiles (``stad_utils.config.PROFILES``) and the methods' defaults."""
    quick, full = PROFILES["quick"], PROFILES["full"]

    def both(label: str, q, f, unit: str = "") -> str:
        return f"{label}: {q}{unit} (quick), {f}{unit} (full)"

    def epochs(method: str) -> str:
        q, f = (resolved_settings(method, p).epochs for p in ("quick", "full"))
        return both("`EPOCHS`, training time in proportion", q, f)

    size = both("image size, cost ∝ pixels", quick.image_size, full.image_size, "²")
    batch = both("batch size, GPU memory ∝ batch", quick.batch_size, full.batch_size)
    steps = both(
        "teacher pre-training steps of 64 triplets (`STEPS`)",
        f"{us_option('teacher_steps', 'quick'):,}",
        f"{us_option('teacher_steps', 'full'):,}",
    )
    width = both("patch-network width (`WIDTH`)", us_option("width", "quick"), 1.0)
    window = (
        f"student training window: {us_option('crop_size', 'quick')}² crops (quick), "
        "the whole image (full), dense extraction ∝ pixels"
    )
    students = (
        f"`NUM_STUDENTS` = {us_option('num_students', 'full')} students, each trained and run"
    )
    return {
        "01_task_and_data": [
            "full profile only: downloading one MVTec AD category, once",
            size,
        ],
        "02_measuring_detectors": ["32 × 32 hand-made maps: no dataset, no model"],
        "02b_the_field": [
            both("frozen backbone", quick.backbone, full.backbone),
            size,
            "`CATEGORIES`: each category's training and test images go through it once",
        ],
        "03_descriptive_teacher": [steps, width, "receptive field `P` (p = 65 costs most)"],
        "04_dense_features": [
            "the naive patch-by-patch reference, ∝ p² × pixels (the fast extractor is cheap)"
        ],
        "05_uninformed_students": [
            epochs("uninformed_students"),
            window,
            width,
            steps + ", three teachers, once (cached)",
            size,
        ],
        "06_stfpm": [epochs("stfpm"), size, batch],
        "07_feature_vectors_variance": [epochs("fvv"), students, size, batch],
        "08_simple_student": [epochs("simple_student"), size, batch],
        "09_comparing_methods": [
            "`METHODS` × `CATEGORIES` × `SEEDS`: one training per run (runs the chapters "
            "already trained are loaded)",
            "Uninformed Students: most of the time in either profile",
            epochs("stfpm"),
            size,
        ],
    }


def book_data(rows: dict, teachers: list[dict], size: int) -> dict:
    """Everything the book's cost boxes and Setup's tables show, as one JSON object."""
    drivers = cost_drivers()
    chapters = {}
    for chapter, gb, hours, what in estimate(rows, teachers):
        chapters[chapter] = {
            "gpu_memory_gb": round(gb, 2),
            "gpu_hours": round(hours, 4),
            "fits_free_colab": gb <= T4_MEMORY_GB and hours <= FREE_SESSION_HOURS,
            "what_runs": what,
            "drivers": drivers[chapter],
        }
    # chapter 5 pre-trains its teachers once: a second run loads them; and the full profile
    # trains fewer epochs than the paper (the box says what the paper's would cost)
    us = rows["uninformed_students"]
    chapters["05_uninformed_students"]["gpu_hours_teachers_cached"] = round(training_hours(us), 4)
    chapters["05_uninformed_students"]["gpu_hours_paper_epochs"] = {
        "epochs": PAPER_EPOCHS,
        "hours_teachers_cached": round(training_hours(us, epochs=PAPER_EPOCHS), 4),
    }
    return {
        "generated_by": "benchmarks/bench_full_costs.py",
        "assumptions": {
            "gpu": "T4 (16 GB)",
            "throughput_flops": THROUGHPUT,
            "throughput_source": THROUGHPUT_SOURCE,
            "usable_memory_gb": T4_MEMORY_GB,
            "free_session_hours": FREE_SESSION_HOURS,
            "cuda_context_gb": CUDA_CONTEXT_GB,
            "image_size": size,
            "category": "carpet",
            "train_images": TRAIN_IMAGES,
            "val_images": VAL_IMAGES,
            "test_images": TEST_IMAGES,
            "teacher_steps": TEACHER_STEPS,
            "teacher_batch": TEACHER_BATCH,
        },
        "methods": rows,
        "teachers": teachers,
        "chapters": chapters,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=PROFILES["full"].image_size)
    parser.add_argument(
        "--rss",
        nargs="*",
        metavar="METHOD",
        help="also measure the peak RSS of real steps (default methods: all but "
        "uninformed_students, whose one real step at 256² takes minutes on a CPU)",
    )
    parser.add_argument(
        "--json",
        default=str(BOOK_DATA),
        help="write measurements, assumptions and chapter estimates to this file "
        "(default: %(default)s, which the book reads; '' to write nothing)",
    )
    args = parser.parse_args()
    torch.manual_seed(0)

    rows = {name: measure_method(name, args.size) for name in METHODS}
    teachers = [measure_teacher_step(p) for p in (17, 33, 65)]
    print(f"## Full profile, {args.size}² images, measured on the CPU\n")
    print(
        "| method | parameters (trainable) | training GFLOP / image | prediction GFLOP / image "
        "| activations / image (MB) | batch | epochs |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows.values():
        print(
            f"| {r['name']} | {r['parameters'] / 1e6:.1f} M ({r['trainable'] / 1e6:.1f} M) "
            f"| {r['train_flops'] / 1e9:,.1f} | {r['predict_flops'] / 1e9:,.1f} "
            f"| {r['activation_bytes'] / 2**20:,.0f} | {r['batch_size']} | {r['epochs']} |"
        )
    for t in teachers:
        print(
            f"| {t['name']} | {t['parameters'] / 1e6:.1f} M ({t['trainable'] / 1e6:.1f} M) "
            f"| {t['train_flops'] / 1e9:,.1f} per step | – "
            f"| {t['activation_bytes'] / 2**20:,.0f} per step | {TEACHER_BATCH} | "
            f"{TEACHER_STEPS:,} steps |"
        )
    if args.rss is not None:
        print("\n| method | RSS growth in one step, batch 1 (MB) | batch 4 (MB) | per image (MB) |")
        print("|---|---:|---:|---:|")
        for name in args.rss or METHODS[:-1]:
            one, four = (step_rss_growth(name, args.size, b) for b in (1, 4))
            print(f"| {name} | {one:,.0f} | {four:,.0f} | {(four - one) / 3:,.0f} |")

    print(
        f"\n## Estimates for a 16 GB T4 at {THROUGHPUT / 1e12:.0f} TFLOPS sustained "
        f"(carpet: {TRAIN_IMAGES} training, {VAL_IMAGES} validation, {TEST_IMAGES} test images)\n"
    )
    print("| chapter | GPU memory (GB) | time (h) | fits a free Colab T4? | what trains |")
    print("|---|---:|---:|---|---|")
    for chapter, gb, hours, what in estimate(rows, teachers):
        fits = "yes" if gb <= T4_MEMORY_GB and hours <= FREE_SESSION_HOURS else "no"
        print(f"| {chapter} | {gb:.1f} | {hours:.2f} | {fits} | {what} |")
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(book_data(rows, teachers, args.size), indent=2, ensure_ascii=False)
        path.write_text(text + "\n", encoding="utf-8")
        print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
