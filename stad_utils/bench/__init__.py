"""The benchmark sweep: every method × category × seed, one JSON per run, then one table.

A sweep is a list of jobs (:func:`jobs`, in a fixed order); each job is one
:func:`stad_utils.runner.run` and leaves one file::

    OUT/runs/<method>__<category>__seed<seed>.json        the flat report + peak memory,
                                                          versions, configuration, job
    OUT/runs/<key>.error.json                             a run that raised (message, traceback)
    OUT/models/<key>/                                     model.pt, only with keep_models

and :func:`merge` turns whatever ``OUT/runs/`` holds into::

    OUT/results.md          means per method, per category, published numbers beside ours
    OUT/results.csv         one row per run
    OUT/summary.csv         per method × category: mean and std over seeds
    OUT/figures/per_category.png, OUT/figures/cost_accuracy.png

**Resuming.** A run's JSON is written atomically (a ``.tmp`` file, then ``os.replace``)
after the run, so it is either whole or absent. Starting the same sweep again skips every
job whose JSON parses and records the same job and configuration; it redoes jobs whose file
is corrupt, whose configuration changed (e.g. another ``--epochs``) and jobs that failed
before. An interrupted sweep therefore resumes by running the same command again.

**Sharding.** ``shard=(i, n)`` (``--shard i/n``, 1-based) takes jobs ``i-1, i-1+n, …`` of
the ordered list: round-robin, so every shard gets a mix of methods and categories and the
n shards together hold every job exactly once. Every shard must be given the same sweep
(methods, categories, seeds; their order on the command line does not matter: the job
list is put in a canonical order). Shards write the same folder structure, so the results
of several machines are combined by copying their ``runs/`` folders into one and merging::

    # three Colab sessions (or machines), each with its own GPU:
    python -m stad_utils bench --profile full --out bench --shard 1/3     # session 1
    python -m stad_utils bench --profile full --out bench --shard 2/3     # session 2
    python -m stad_utils bench --profile full --out bench --shard 3/3     # session 3
    # copy the three bench/runs/ folders into one bench/runs/, then
    python -m stad_utils bench --merge --out bench

    # a SLURM job array (sbatch --array=1-8):
    python -m stad_utils bench --out bench --shard ${SLURM_ARRAY_TASK_ID}/8

The merged tables do not depend on how the runs were split: they are computed from the
run files alone, in a fixed order, without timestamps or paths.

**Peak memory** (``peak_memory_mb``, MiB) depends on the device: on CUDA the largest
allocation of the run (``torch.cuda.max_memory_allocated`` after resetting the peak); on
Apple MPS the memory the driver holds after the run (MPS keeps no peak); on the CPU the
peak resident set size of the whole *process* since it started (``resource.getrusage``),
so within one sweep a run never reports less than the runs before it; ``None`` where the
``resource`` module is missing (Windows).

The package has one module per job: :mod:`.joblist` (the jobs, their order and shards),
:mod:`.sweep` (running them), :mod:`.results` (reading and merging the run files) and
:mod:`.report` (the Markdown tables, published numbers beside ours, figures). Import from
``stad_utils.bench``: every public name is here.
"""

from .joblist import (
    BOOK_ORDER,
    SHARD_HELP,
    BenchJob,
    default_data_root,
    jobs,
    method_names,
    other_categories,
    parse_shard,
    shard_jobs,
)
from .report import (
    OVERALL_COLUMNS,
    overall_table,
    per_category_table,
    published_beside,
    published_beside_table,
    results_markdown,
    save_figures,
)
from .results import (
    LABEL_FREE_KEYS,
    RESULT_KEYS,
    SUMMARY_METRICS,
    BenchResults,
    collect,
    merge,
)
from .sweep import (
    Sweep,
    SweepReport,
    device_type_of,
    job_status,
    peak_memory_mb,
    run_sweep,
    sweep_settings,
)

#: the name ``device_type_of`` had when the sweep was one module (tests use it)
_device_type = device_type_of

__all__ = [
    "BOOK_ORDER",
    "BenchJob",
    "Sweep",
    "SweepReport",
    "BenchResults",
    "jobs",
    "method_names",
    "other_categories",
    "parse_shard",
    "shard_jobs",
    "job_status",
    "run_sweep",
    "merge",
    "collect",
    "results_markdown",
    "overall_table",
    "per_category_table",
    "published_beside_table",
    "save_figures",
    "published_beside",
    "peak_memory_mb",
    "default_data_root",
    "device_type_of",
    "sweep_settings",
    "LABEL_FREE_KEYS",
    "RESULT_KEYS",
    "SUMMARY_METRICS",
    "OVERALL_COLUMNS",
    "SHARD_HELP",
]
