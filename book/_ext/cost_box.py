"""Sphinx extension: the cost box at the top of every chapter, and Setup's cost tables.

A chapter opens with a markdown cell holding

    ```{cost-box}
    A sentence for Jupyter and Colab, where the directive shows as a plain box.
    ```

In the book the box says what running the chapter costs, from two measurements:

* **quick profile, this build**: the CPU time (user + system) of the kernel that executed
  the notebook in *this* build, and myst-nb's wall-clock runtime for it. myst-nb executes
  a notebook while Sphinx reads it (between the events ``source-read`` and
  ``doctree-read``), in a kernel that is a child process of the build; once the kernel
  has exited, its CPU time (and its own children's) is added to the build's
  ``os.times().children_*``. The difference across the read is the chapter's CPU time.
  A chapter that was not executed in this build (outputs from jupyter-cache, execution
  off, an incremental build that did not read it again) says "not measured in this
  build": no stale number is ever shown.
* **full profile on a T4 GPU**: the estimate and the cost drivers in
  ``book/_data/full_costs.json``, written by ``benchmarks/bench_full_costs.py`` from
  measured FLOPs and activations and the profiles' settings.

The CPU time is known only after the notebook ran, so the directive leaves a placeholder
node and ``doctree-resolved`` replaces it (the directive's own text is what Jupyter
shows; the book drops it). The directive ``{full-cost-table}`` (argument ``methods`` or
``chapters``) renders Setup's tables from the same JSON file.

Settings (``sphinx: config:`` in ``_config.yml``): ``cost_box_data``, the JSON file
relative to the book's root (default ``book/_data/full_costs.json``), and
``cost_box_costs_page``, the page with the cost tables (default ``book/setup``; the box
links to its ``full-profile-costs`` section when the page is in the book).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

BOX_TITLE = "What this chapter costs to run"
COSTS_SECTION = "full-profile-costs"
METHOD_TITLES = {
    "stfpm": "STFPM",
    "fvv": "Feature Vectors Variance (3 students)",
    "simple_student": "Simple Student",
    "uninformed_students": "Uninformed Students (3 scales × 3 students, whole image)",
}


class CostBoxError(Exception):
    """The cost data is missing or has no entry for a chapter."""


# --- the text of the box: plain functions of the measurements (tested) ---------------


def load_costs(path: Path) -> dict:
    if not path.is_file():
        raise CostBoxError(
            f"cost box: {path} is missing; write it with `python benchmarks/bench_full_costs.py`."
        )
    return json.loads(path.read_text(encoding="utf-8"))


def chapter_costs(data: dict, chapter: str) -> dict:
    chapters = data.get("chapters", {})
    if chapter not in chapters:
        raise CostBoxError(
            f"cost box: no estimate for chapter {chapter!r} in the cost data (it has "
            f"{', '.join(sorted(chapters)) or 'none'}); add the chapter to `estimate` and "
            "`cost_drivers` in benchmarks/bench_full_costs.py and run it again."
        )
    return chapters[chapter]


def seconds_text(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:,.0f} s"


def quick_text(measurement: dict | None) -> str:
    """The sentence on this build's run: its measured CPU time, or that there is none."""
    if measurement is None:
        return (
            "In this build: not measured (the notebook was not executed in this build: "
            "its outputs came from a cache, or execution was turned off)."
        )
    cores = measurement["cores"]
    return (
        f"{measurement['profile'].capitalize()} profile, measured in this build: "
        f"{seconds_text(measurement['cpu_seconds'])} of CPU time "
        f"({seconds_text(measurement['wall_seconds'])} wall clock) on this build's machine "
        f"({cores} CPU core{'s' if cores != 1 else ''})."
    )


def duration_text(hours: float) -> str:
    minutes = hours * 60
    if minutes < 1:
        return "under a minute"
    if minutes < 90:
        return f"about {minutes:.0f} min"
    return f"about {hours:.1f} h"


def gpu_text(chapter: dict, assumptions: dict) -> str:
    """The full-profile sentence: the T4 estimate, memory, and whether it fits Colab."""
    hours, memory = chapter["gpu_hours"], chapter["gpu_memory_gb"]
    gpu = assumptions["gpu"].split(" (")[0]
    if memory == 0:
        return f"Full profile: needs no GPU ({chapter['what_runs']})."
    text = f"Full profile on a {gpu} GPU: {duration_text(hours)} of computation"
    if "gpu_hours_teachers_cached" in chapter:
        text += f" ({duration_text(chapter['gpu_hours_teachers_cached'])} with cached teachers)"
    text += f" and {memory:.1f} GB of GPU memory for {chapter['what_runs']}"
    if "gpu_hours_paper_epochs" in chapter:
        paper = chapter["gpu_hours_paper_epochs"]
        text += (
            f" (the paper's {paper['epochs']} epochs would take "
            f"{duration_text(paper['hours_teachers_cached'])} with cached teachers)"
        )
    if 0 < hours * 60 < 5:
        text += "; reading and augmenting the images adds to the arithmetic here"
    text += ". " + ("Fits" if chapter["fits_free_colab"] else "Does not fit")
    tflops = assumptions["throughput_flops"] / 1e12
    return (
        text + f" a free Colab session. Estimated from the FLOPs and activations "
        f"measured by `benchmarks/bench_full_costs.py`, at {tflops:g} TFLOPS sustained: "
        f"{assumptions['throughput_source']}."
    )


def driver_items(chapter: dict) -> list[str]:
    return list(chapter["drivers"])


def measurement_for_this_build(record: dict | None, build_started: float) -> dict | None:
    """A recorded measurement if it was taken in the build that started at
    ``build_started``; ``None`` for none or one kept from an earlier build."""
    if record is None or record["recorded_at"] < build_started:
        return None
    return record


# --- measuring: the kernel's CPU time across the read of each notebook ---------------


def children_cpu_seconds() -> float:
    times = os.times()
    return times.children_user + times.children_system


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def build_profile() -> str:
    """The profile the chapters run in: the package's own rule (``STAD_PROFILE``, else
    ``auto``: full where CUDA is present), or the variable itself without the package."""
    try:
        from stad_utils.config import resolve_profile_name

        return resolve_profile_name()
    except (ImportError, ValueError):
        return os.environ.get("STAD_PROFILE", "auto")


def note_build_start(app) -> None:
    app.env.cost_box_build_started = time.time()
    app.env.cost_box_profile = build_profile()


def note_read_start(app, docname, source) -> None:
    if not hasattr(app.env, "cost_box_read_start"):
        app.env.cost_box_read_start = {}
    app.env.cost_box_read_start[docname] = children_cpu_seconds()


def record_measurement(app, doctree) -> None:
    """After a notebook's read: if myst-nb executed it in this build, keep its CPU and
    wall time (myst-nb's ``exec_data`` for a cache hit carries the cache's old time)."""
    env = app.env
    docname = env.docname
    started = getattr(env, "cost_box_read_start", {}).pop(docname, None)
    exec_data = getattr(env, "nb_metadata", {}).get(docname, {}).get("exec_data")
    if started is None or not exec_data or exec_data.get("runtime") is None:
        return
    if exec_data["mtime"] < env.cost_box_build_started or not exec_data["succeeded"]:
        return
    if not hasattr(env, "cost_box_measurements"):
        env.cost_box_measurements = {}
    env.cost_box_measurements[docname] = {
        "cpu_seconds": children_cpu_seconds() - started,
        "wall_seconds": exec_data["runtime"],
        "cores": available_cores(),
        "profile": env.cost_box_profile,
        "recorded_at": time.time(),
    }


def purge_measurement(app, env, docname) -> None:
    getattr(env, "cost_box_measurements", {}).pop(docname, None)


def merge_measurements(app, env, docnames, other) -> None:
    """Parallel reads: bring the workers' measurements into the main environment."""
    theirs = getattr(other, "cost_box_measurements", {})
    if not hasattr(env, "cost_box_measurements"):
        env.cost_box_measurements = {}
    for docname in docnames:
        if docname in theirs:
            env.cost_box_measurements[docname] = theirs[docname]


# --- the directive and its node ------------------------------------------------------


class cost_box_placeholder(nodes.General, nodes.Element):
    """Where a cost box goes; replaced once the build knows the chapter's CPU time."""


def skip_node(self, node) -> None:
    raise nodes.SkipNode


class CostBoxDirective(SphinxDirective):
    """``{cost-box}`` [chapter]; the chapter defaults to the document's file name."""

    optional_arguments = 1
    has_content = True  # shown by Jupyter and Colab only

    def run(self):
        chapter = self.arguments[0] if self.arguments else Path(self.env.docname).name
        data_path = Path(self.env.srcdir) / self.config.cost_box_data
        self.env.note_dependency(str(data_path))
        try:
            chapter_costs(load_costs(data_path), chapter)
        except CostBoxError as error:
            raise self.error(str(error)) from None
        return [cost_box_placeholder(chapter=chapter)]


def inline(text: str) -> list[nodes.Node]:
    """Text with `code` spans as literal nodes (the JSON's strings use backticks)."""
    parts = text.split("`")
    return [
        nodes.literal(part, part) if index % 2 else nodes.Text(part)
        for index, part in enumerate(parts)
        if part
    ]


def costs_link(app, docname: str) -> nodes.Node | None:
    page = app.config.cost_box_costs_page
    if not page or page not in app.env.found_docs or docname == page:
        return None
    try:
        uri = app.builder.get_relative_uri(docname, page) + "#" + COSTS_SECTION
    except Exception:  # a builder without URIs (e.g. text): no link
        return None
    return nodes.reference("", "all estimates and how they are made", refuri=uri)


def box_node(app, docname: str, chapter: str) -> nodes.Node:
    data = load_costs(Path(app.srcdir) / app.config.cost_box_data)
    costs = chapter_costs(data, chapter)
    record = getattr(app.env, "cost_box_measurements", {}).get(docname)
    started = getattr(app.env, "cost_box_build_started", time.time())
    box = nodes.admonition(classes=["cost-box", "note"])
    box += nodes.title(BOX_TITLE, BOX_TITLE)
    box += nodes.paragraph("", "", *inline(quick_text(measurement_for_this_build(record, started))))
    gpu = nodes.paragraph("", "", *inline(gpu_text(costs, data["assumptions"])))
    link = costs_link(app, docname)
    if link is not None:
        gpu += [nodes.Text(" Setup: "), link, nodes.Text(".")]
    box += gpu
    box += nodes.paragraph("", "What drives the cost:")
    items = nodes.bullet_list()
    for item in driver_items(costs):
        items += nodes.list_item("", nodes.paragraph("", "", *inline(item)))
    box += items
    return box


def fill_cost_boxes(app, doctree, docname) -> None:
    for placeholder in list(doctree.findall(cost_box_placeholder)):
        placeholder.replace_self(box_node(app, docname, placeholder["chapter"]))


# --- Setup's tables, from the same file ----------------------------------------------


def methods_table(data: dict) -> str:
    rows = [
        "| method | parameters (trainable) | GFLOP per image, training step "
        "| GFLOP per image, prediction | activations per image | batch | epochs |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, m in data["methods"].items():
        rows.append(
            f"| {METHOD_TITLES.get(name, name)} | {m['parameters'] / 1e6:.1f} M "
            f"({m['trainable'] / 1e6:.1f} M) | {m['train_flops'] / 1e9:,.1f} "
            f"| {m['predict_flops'] / 1e9:,.1f} | {m['activation_bytes'] / 2**20:,.0f} MB "
            f"| {m['batch_size']} | {m['epochs']} |"
        )
    steps = data["assumptions"]["teacher_steps"]
    for t in data["teachers"]:
        rows.append(
            f"| {t['name']} | {t['parameters'] / 1e6:.1f} M ({t['trainable'] / 1e6:.1f} M) "
            f"| {t['train_flops'] / 1e9:,.0f} per step | – "
            f"| {t['activation_bytes'] / 2**20:,.0f} MB per step "
            f"| {data['assumptions']['teacher_batch']} | {steps:,} steps |"
        )
    return "\n".join(rows)


def chapters_table(data: dict) -> str:
    rows = [
        "| chapter | what runs | GPU memory | time on a T4 | fits a free Colab GPU? |",
        "|---|---|---:|---:|---|",
    ]
    for chapter, c in data["chapters"].items():
        memory = f"{c['gpu_memory_gb']:.1f} GB" if c["gpu_memory_gb"] else "no GPU"
        hours = duration_text(c["gpu_hours"])
        if "gpu_hours_teachers_cached" in c:
            hours += f" ({duration_text(c['gpu_hours_teachers_cached'])} with cached teachers)"
        fits = "yes" if c["fits_free_colab"] else "no"
        rows.append(
            f"| {{doc}}`/notebooks/{chapter}` | {c['what_runs']} | {memory} | {hours} | {fits} |"
        )
    return "\n".join(rows)


class FullCostTableDirective(SphinxDirective):
    """``{full-cost-table} methods`` or ``{full-cost-table} chapters``."""

    required_arguments = 1
    option_spec = {"class": directives.class_option}

    def run(self):
        kind = self.arguments[0]
        tables = {"methods": methods_table, "chapters": chapters_table}
        if kind not in tables:
            raise self.error(
                f"full-cost-table: unknown table {kind!r}; use one of {sorted(tables)}"
            )
        data_path = Path(self.env.srcdir) / self.config.cost_box_data
        self.env.note_dependency(str(data_path))
        try:
            text = tables[kind](load_costs(data_path))
        except CostBoxError as error:
            raise self.error(str(error)) from None
        container = nodes.container()
        self.state.nested_parse(text.splitlines(), self.content_offset, container)
        return container.children


def setup(app):
    app.add_config_value("cost_box_data", "book/_data/full_costs.json", "env")
    app.add_config_value("cost_box_costs_page", "book/setup", "env")
    app.add_node(
        cost_box_placeholder,
        html=(skip_node, None),
        latex=(skip_node, None),
        text=(skip_node, None),
    )
    app.add_directive("cost-box", CostBoxDirective)
    app.add_directive("full-cost-table", FullCostTableDirective)
    app.connect("builder-inited", note_build_start)
    app.connect("source-read", note_read_start)
    app.connect("doctree-read", record_measurement)
    app.connect("env-purge-doc", purge_measurement)
    app.connect("env-merge-info", merge_measurements)
    app.connect("doctree-resolved", fill_cost_boxes)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
