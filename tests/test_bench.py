"""The benchmark sweep: job order, shards, resuming, failures, merging, published numbers.

Almost every test runs the sweep with a fake, deterministic run function (no training);
one test trains STFPM for real on the tiny fixture dataset.
"""

from __future__ import annotations

import json
import shutil
import zlib
from dataclasses import asdict
from pathlib import Path

import pytest

from stad_utils import bench, published
from stad_utils.__main__ import build_parser, main
from stad_utils.runner import REPORT_KEYS


def fake_report(config) -> dict:
    """A realistic flat report whose numbers depend only on method, category and seed."""
    h = zlib.crc32(f"{config.method}/{config.category}/{config.seed}".encode())
    return {
        "method": config.method,
        "category": config.category,
        "image_auroc": 0.5 + (h % 997) / 2000,
        "pixel_auroc": 0.6 + (h % 991) / 2500,
        "au_pro": 0.4 + (h % 983) / 1700,
        "dice": (h % 977) / 1000,
        "threshold": 1.0 + (h % 13),
        "false_goods": h % 5,
        "false_bads": h % 7,
        "train_seconds": 5.0 + h % 50,
        "train_images_per_second": 10.0 + h % 9,
        "predict_seconds_per_image": 0.001 * (1 + h % 20),
        "parameters": 100_000 * (1 + len(config.method)),
        "profile": config.profile,
        "device": "cpu",
        "seed": config.seed,
        "peak_memory_mb": 100.0 + h % 300,  # deterministic (the real one is process-wide)
        "run_seconds": 6.0 + h % 50,  # as runner.run times itself (results.csv's wall_seconds)
        "config": asdict(config),
    }


class FakeRun:
    """Counts calls; raises ``KeyboardInterrupt`` on call ``interrupt_at`` and an error for
    the jobs in ``fail``."""

    def __init__(self, interrupt_at: int | None = None, fail: tuple = ()):
        self.calls, self.interrupt_at, self.fail = [], interrupt_at, fail

    def __call__(self, config):
        self.calls.append((config.method, config.category, config.seed))
        if self.interrupt_at is not None and len(self.calls) == self.interrupt_at:
            raise KeyboardInterrupt
        if (config.method, config.category) in self.fail:
            raise RuntimeError("CUDA out of memory (simulated)")
        return fake_report(config)


def make_sweep(out: Path, **changes) -> bench.Sweep:
    settings = {
        "data": "unused",
        "out": str(out),
        "methods": ("stfpm", "fvv"),
        "categories": ("brick", "grass", "gravel"),
        "seeds": (42, 43),
        "profile": "quick",
    }
    return bench.Sweep(**{**settings, **changes})


def quiet(line: str) -> None:
    pass


# ----------------------------------------------------------------------------------------
# Jobs and shards
# ----------------------------------------------------------------------------------------


def test_jobs_are_in_canonical_order_with_keys():
    found = bench.jobs(["simple_student", "fvv", "stfpm"], ["grass", "brick"], [43, 42])
    assert [job.key for job in found[:4]] == [
        "stfpm__brick__seed42",
        "stfpm__brick__seed43",
        "stfpm__grass__seed42",
        "stfpm__grass__seed43",
    ]
    assert [job.method for job in found[::4]] == ["stfpm", "fvv", "simple_student"]
    assert len(found) == 12 and len({job.key for job in found}) == 12
    # the argument order does not matter
    assert found == bench.jobs(["stfpm", "simple_student", "fvv"], ["brick", "grass"], [42, 43])
    assert bench.BenchJob("fvv", "brick", 7).to_dict() == {
        "method": "fvv",
        "category": "brick",
        "seed": 7,
        "key": "fvv__brick__seed7",
    }


def test_default_methods_book_order_then_alphabetical(monkeypatch):
    registry = dict.fromkeys(["zeta", "simple_student", "_hidden", "stfpm", "alpha", "fvv"])
    monkeypatch.setattr(bench.joblist, "METHODS", registry)  # the registry method_names reads
    assert bench.method_names() == ["stfpm", "fvv", "simple_student", "alpha", "zeta"]
    with pytest.raises(ValueError, match="Unknown method"):
        bench.method_names(["stfmp"])


def test_default_categories_come_from_the_data_root_and_seed_from_the_profile(mvtec_root):
    found = bench.jobs(["stfpm"], data=mvtec_root, profile="quick")
    assert [job.key for job in found] == [
        "stfpm__alpha__seed42",
        "stfpm__beta__seed42",
        "stfpm__gamma__seed42",
    ]
    with pytest.raises(ValueError, match="No category folders"):
        bench.jobs(["stfpm"], data=mvtec_root / "alpha")
    # MVTec categories in the papers' order
    assert [j.category for j in bench.jobs(["stfpm"], ["wood", "bottle", "carpet"], [1])] == [
        "carpet",
        "wood",
        "bottle",
    ]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 7, 13])
def test_shards_partition_the_jobs_round_robin(count):
    everything = bench.jobs(["stfpm", "fvv"], ["brick", "grass", "gravel"], [1, 2])
    shards = [bench.shard_jobs(everything, f"{i}/{count}") for i in range(1, count + 1)]
    flat = [job for shard in shards for job in shard]
    assert sorted(flat, key=everything.index) == everything  # every job exactly once
    assert len(flat) == len(set(flat))
    assert max(map(len, shards)) - min(map(len, shards)) <= 1  # balanced
    assert shards[0][0] == everything[0] and shards[0][1:2] == everything[count : count + 1]


@pytest.mark.parametrize("text", ["0/3", "4/3", "3", "a/b", "1/0", "-1/2", "1/2/3", "", "2:3"])
def test_malformed_shards_are_refused(text):
    with pytest.raises(ValueError, match="--shard must look like 2/3 with 1 ≤ i ≤ n"):
        bench.parse_shard(text)


# ----------------------------------------------------------------------------------------
# Running, resuming, failures
# ----------------------------------------------------------------------------------------


def test_a_run_file_holds_report_memory_versions_config_and_job(tmp_path):
    sweep = make_sweep(tmp_path, methods=("stfpm",), categories=("brick",), seeds=(42,))

    def without_memory(config):
        report = fake_report(config)
        del report["peak_memory_mb"]
        return report

    bench.run_sweep(sweep, run_fn=without_memory, log=quiet)
    record = json.loads((tmp_path / "runs" / "stfpm__brick__seed42.json").read_text())
    assert set(REPORT_KEYS) <= set(record)
    assert record["peak_memory_mb"] > 0  # the process's peak resident set on the CPU
    assert record["job"] == {
        "method": "stfpm",
        "category": "brick",
        "seed": 42,
        "key": "stfpm__brick__seed42",
    }
    assert record["config"]["epochs"] == 20 and record["config"]["figures"] is False
    assert record["config"]["out"] is None  # no model.pt without keep_models
    assert {"torch", "stad_utils", "python"} <= set(record["versions"])
    assert record["profile"] == "quick" and record["device"] == "cpu" and record["finished_at"]
    assert not list((tmp_path / "runs").glob("*.tmp"))
    kept = make_sweep(tmp_path, keep_models=True).run_config(bench.BenchJob("fvv", "brick", 1))
    assert kept.out == str(tmp_path / "models" / "fvv__brick__seed1")


def test_an_interrupted_sweep_resumes_with_the_remaining_jobs(tmp_path):
    sweep = make_sweep(tmp_path)  # 12 jobs
    first = FakeRun(interrupt_at=6)  # 5 jobs finish, the 6th is interrupted
    with pytest.raises(KeyboardInterrupt):
        bench.run_sweep(sweep, run_fn=first, log=quiet)
    assert len(list((tmp_path / "runs").glob("*.json"))) == 5

    lines = []
    second = FakeRun()
    report = bench.run_sweep(sweep, run_fn=second, log=lines.append)
    assert len(second.calls) == 7 and second.calls[0] == first.calls[5]
    assert len(report.skipped) == 5 and len(report.ran) == 7 and report.ok
    assert lines[0] == "[1/12] stfpm brick seed 42: skipped (finished)"
    assert lines[-1].startswith("[12/12] fvv gravel seed 43: done in ") and "AU-PRO 0." in lines[-1]
    keys = {job.key for job in sweep.jobs()}
    assert {p.stem for p in (tmp_path / "runs").glob("*.json")} == keys

    third = FakeRun()  # nothing left to do
    assert bench.run_sweep(sweep, run_fn=third, log=quiet).skipped == [j.key for j in sweep.jobs()]
    assert third.calls == []


def test_a_corrupt_or_outdated_run_file_is_redone(tmp_path):
    sweep = make_sweep(tmp_path, methods=("stfpm",), categories=("brick",), seeds=(1, 2, 3))
    bench.run_sweep(sweep, run_fn=FakeRun(), log=quiet)
    runs = tmp_path / "runs"
    (runs / "stfpm__brick__seed2.json").write_text('{"method": "stfpm", "au_pro": 0.9')  # cut off
    lines, again = [], FakeRun()
    bench.run_sweep(sweep, run_fn=again, log=lines.append)
    assert again.calls == [("stfpm", "brick", 2)]
    assert "redoing (stfpm__brick__seed2.json is unreadable" in lines[1]
    json.loads((runs / "stfpm__brick__seed2.json").read_text())  # whole again

    longer = make_sweep(
        tmp_path, methods=("stfpm",), categories=("brick",), seeds=(1, 2, 3), epochs=3
    )
    job = longer.jobs()[0]
    status, detail = bench.job_status(job, longer.run_config(job), runs)
    assert status == "changed" and "epochs=20→3" in detail
    assert bench.job_status(job, sweep.run_config(job), runs)[0] == "done"
    assert len(bench.run_sweep(longer, run_fn=FakeRun(), log=quiet).ran) == 3
    # a different device or data path is the same experiment: not redone
    moved = make_sweep(
        tmp_path,
        methods=("stfpm",),
        categories=("brick",),
        seeds=(1, 2, 3),
        epochs=3,
        data="/elsewhere",
        device="cpu",
    )
    assert bench.run_sweep(moved, run_fn=FakeRun(), log=quiet).ran == []


def test_a_failing_job_is_recorded_and_the_others_run(tmp_path):
    sweep = make_sweep(tmp_path)
    fake = FakeRun(fail=(("fvv", "grass"),))
    lines = []
    report = bench.run_sweep(sweep, run_fn=fake, log=lines.append)
    assert len(fake.calls) == 12 and not report.ok
    assert sorted(report.failed) == ["fvv__grass__seed42", "fvv__grass__seed43"]
    assert "FAILED fvv__grass__seed42: RuntimeError: CUDA out of memory" in report.summary()
    assert any(
        line.endswith("FAILED (RuntimeError: CUDA out of memory (simulated))") for line in lines
    )
    error = json.loads((tmp_path / "runs" / "fvv__grass__seed42.error.json").read_text())
    assert "out of memory" in error["error"] and "Traceback" in error["traceback"]
    assert len(list((tmp_path / "runs").glob("*__seed4?.json"))) == 10

    with pytest.warns(UserWarning, match="2 run.s. failed and have no result"):
        results = bench.merge(tmp_path, figures=False)  # failures are listed, not merged
    assert results.failures == ["fvv__grass__seed42", "fvv__grass__seed43"]
    assert len(results.runs) == 10

    retry = FakeRun()  # the next start retries only the failed jobs, and clears the errors
    assert len(bench.run_sweep(sweep, run_fn=retry, log=quiet).ran) == 2
    assert retry.calls == [("fvv", "grass", 42), ("fvv", "grass", 43)]
    assert not list((tmp_path / "runs").glob("*.error.json"))


# ----------------------------------------------------------------------------------------
# Merging
# ----------------------------------------------------------------------------------------


def test_merged_shards_equal_the_unsharded_sweep_byte_for_byte(tmp_path):
    whole = tmp_path / "whole"
    bench.run_sweep(make_sweep(whole), run_fn=FakeRun(), log=quiet)
    combined = tmp_path / "combined" / "runs"
    combined.mkdir(parents=True)
    for i in (1, 2):
        shard_out = tmp_path / f"shard{i}"
        report = bench.run_sweep(make_sweep(shard_out), f"{i}/2", run_fn=FakeRun(), log=quiet)
        assert len(report.ran) == 6
        for path in (shard_out / "runs").glob("*.json"):
            shutil.copy(path, combined / path.name)
    a = bench.merge(whole, figures=False)
    b = bench.merge(combined.parent, figures=False)
    for name in ("results.md", "summary.csv", "results.csv"):
        assert (whole / name).read_bytes() == (combined.parent / name).read_bytes(), name
    assert a.summary == b.summary

    # and the numbers are the means and standard deviations over the seeds
    runs = [json.loads(p.read_text()) for p in sorted((whole / "runs").glob("fvv__grass__*"))]
    values = [r["au_pro"] for r in runs]
    assert a.cell("fvv", "grass", "au_pro") == pytest.approx(sum(values) / 2)
    assert a.cell("fvv", "grass", "au_pro", "std") == pytest.approx(
        abs(values[0] - values[1]) / 2**0.5
    )
    header = (whole / "summary.csv").read_text().splitlines()[0].split(",")
    assert header[:5] == ["method", "category", "seeds", "image_auroc_mean", "image_auroc_std"]
    assert "peak_memory_mb_mean" in header and "parameters_std" in header
    assert [row["method"] for row in a.overall] == ["stfpm", "fvv"]
    markdown = (whole / "results.md").read_text()
    assert (
        "| method | image AUROC | pixel AUROC | AU-PRO | Dice (oracle t) | false goods (oracle) "
        "| false bads (oracle) | Dice (label-free t) | false goods (label-free) "
        "| false bads (label-free) |" in markdown
    )
    assert "ms per image | parameters | peak MB |" in markdown
    assert "tmp" not in markdown and str(tmp_path) not in markdown


def test_merge_warns_about_duplicates_and_mixed_profiles(tmp_path):
    sweep = make_sweep(tmp_path, methods=("stfpm",), categories=("brick",), seeds=(1, 2))
    bench.run_sweep(sweep, run_fn=FakeRun(), log=quiet)
    runs = tmp_path / "runs"
    shutil.copy(runs / "stfpm__brick__seed1.json", runs / "stfpm__brick__seed1 (1).json")
    record = json.loads((runs / "stfpm__brick__seed2.json").read_text())
    (runs / "stfpm__brick__seed2.json").write_text(json.dumps({**record, "profile": "full"}))
    with pytest.warns(UserWarning) as caught:
        results = bench.merge(tmp_path, figures=False)
    messages = " ".join(str(w.message) for w in caught)
    assert (
        "recorded twice" in messages and "different profiles are merged (full, quick)" in messages
    )
    assert len(results.runs) == 2


def test_published_numbers_appear_beside_ours_for_mvtec_categories(tmp_path):
    sweep = make_sweep(
        tmp_path,
        methods=("uninformed_students", "stfpm"),
        categories=("carpet", "bottle"),
        seeds=(42,),
    )
    bench.run_sweep(sweep, run_fn=FakeRun(), log=quiet)
    results = bench.merge(tmp_path, figures=False)
    rows = bench.published_beside(results)
    us = [r for r in rows if r["method"] == "uninformed_students" and r["category"] == "carpet"]
    assert us == [
        {
            "method": "uninformed_students",
            "category": "carpet",
            "metric": "au_pro",
            "ours": results.cell("uninformed_students", "carpet", "au_pro"),
            "published": published.US_PRO["carpet"],
            "source": "US_PRO, p = 65 only; ours: mean of the scales run",
            "source_key": "US_PRO",
        }
    ]
    stfpm_image = {
        r["source"]: r["published"]
        for r in rows
        if (r["method"], r["category"], r["metric"]) == ("stfpm", "carpet", "image_auroc")
    }
    assert stfpm_image == {
        "THESIS": published.THESIS_IMAGE_AUROC["stfpm"]["carpet"],
        "ANOMALIB, ResNet-18": published.ANOMALIB_STFPM_IMAGE_AUROC["resnet18"]["carpet"],
    }
    markdown = (tmp_path / "results.md").read_text()
    assert f"{published.US_PRO['carpet']:.3f} (US_PRO, p = 65 only" in markdown
    assert "published AU-PRO" in markdown and "published image AUROC" in markdown
    assert "* `US_PRO`: " + published.SOURCES["US_PRO"] in markdown
    assert "No published numbers" not in markdown


def test_textures_categories_say_in_one_line_that_nothing_is_published(tmp_path):
    bench.run_sweep(make_sweep(tmp_path, seeds=(42,)), run_fn=FakeRun(), log=quiet)
    results = bench.merge(tmp_path, figures=True)
    assert bench.published_beside(results) == []
    markdown = (tmp_path / "results.md").read_text()
    notes = [line for line in markdown.splitlines() if "No published numbers" in line]
    assert len(notes) == 1 and "carpet" in notes[0]
    assert "published AU-PRO" not in markdown and "published image AUROC" not in markdown
    for name in ("per_category.png", "cost_accuracy.png"):
        assert (tmp_path / "figures" / name).stat().st_size > 10_000


def test_merge_of_an_empty_folder_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="No finished runs"):
        bench.merge(tmp_path)


# ----------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------


def test_bench_command_line_parsing(tmp_path):
    args = build_parser().parse_args(
        "bench --data d --out o --methods stfpm,fvv --categories brick --seeds 42,43 "
        "--profile quick --epochs 2 --image-size 64 --device cpu --shard 2/3 "
        "--keep-models --dry-run".split()
    )
    assert (args.methods, args.categories, args.seeds) == ("stfpm,fvv", "brick", "42,43")
    assert (args.shard, args.epochs, args.image_size, args.device) == ((2, 3), 2, 64, "cpu")
    assert args.keep_models and args.dry_run and not args.merge
    merge_args = build_parser().parse_args(["bench", "--merge", "--out", "o"])
    assert merge_args.merge and merge_args.shard is None


def test_bench_command_line_refuses_a_malformed_shard(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["bench", "--out", "o", "--shard", "3/2"])
    assert "--shard must look like 2/3 with 1 ≤ i ≤ n" in capsys.readouterr().err


def test_bench_command_runs_resumes_merges_and_fails_with_status_1(tmp_path, capsys, monkeypatch):
    fake = FakeRun(fail=(("fvv", "beta"),))
    monkeypatch.setattr("stad_utils.runner.run", fake)
    for category in ("alpha", "beta"):  # the command checks that the categories exist
        (tmp_path / category / "train" / "good").mkdir(parents=True)
    out = tmp_path / "bench"
    argv = ["bench", "--out", str(out), "--methods", "fvv,stfpm", "--categories", "alpha,beta"]
    argv += ["--profile", "quick", "--data", str(tmp_path), "--no-figures"]
    assert main(argv) == 1
    text = capsys.readouterr().out
    assert "[1/4] stfpm alpha seed 42: done in " in text and "FAILED fvv__beta__seed42" in text
    assert (out / "results.md").exists() and (out / "summary.csv").exists()

    assert main([*argv, "--dry-run", "--shard", "2/2"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "[1/2] stfpm__beta__seed42: done",
        "[2/2] fvv__beta__seed42: failed (RuntimeError: CUDA out of memory (simulated))",
    ]
    fake.fail = ()
    assert main(argv) == 0 and len(fake.calls) == 5
    assert main(["bench", "--merge", "--out", str(out), "--no-figures"]) == 0
    assert "4 runs merged" in capsys.readouterr().out


# ----------------------------------------------------------------------------------------
# One real run
# ----------------------------------------------------------------------------------------


def test_one_real_run_on_the_tiny_dataset(mvtec_root, tmp_path):
    sweep = bench.Sweep(
        data=str(mvtec_root),
        out=str(tmp_path / "bench"),
        methods=("stfpm",),
        categories=("alpha",),
        profile="quick",
        epochs=1,
        image_size=64,
        batch_size=4,
        device="cpu",
    )
    report = bench.run_sweep(sweep, log=quiet)
    assert report.ran == ["stfpm__alpha__seed42"]
    record = json.loads((tmp_path / "bench" / "runs" / "stfpm__alpha__seed42.json").read_text())
    assert 0 <= record["au_pro"] <= 1 and record["parameters"] > 0 and record["peak_memory_mb"] > 0
    assert not (tmp_path / "bench" / "models").exists()
    results = bench.merge(tmp_path / "bench", figures=False)
    assert results.runs[0]["key"] == "stfpm__alpha__seed42"
    label_free = record["thresholds"]["validation_quantile"]  # a real run records the rule
    assert results.runs[0]["label_free_dice"] == label_free["dice"]
    assert 0 <= results.runs[0]["label_free_dice"] <= 1


def test_a_changed_job_loses_its_old_checkpoint_and_an_interrupted_one_keeps_it(tmp_path):
    one = {"methods": ("stfpm",), "categories": ("brick",), "seeds": (1,), "keep_models": True}
    sweep = make_sweep(tmp_path, **one)
    bench.run_sweep(sweep, run_fn=FakeRun(), log=quiet)
    checkpoint = tmp_path / "models" / "stfpm__brick__seed1" / "checkpoint" / "last.pt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"old run")
    bench.run_sweep(sweep, run_fn=FakeRun(), log=quiet)  # finished: skipped, untouched
    assert checkpoint.exists()
    (tmp_path / "runs" / "stfpm__brick__seed1.json").unlink()  # as if interrupted
    bench.run_sweep(sweep, run_fn=FakeRun(), log=quiet)  # same configuration: may resume
    assert checkpoint.exists()
    changed = make_sweep(tmp_path, epochs=3, **one)
    assert bench.run_sweep(changed, run_fn=FakeRun(), log=quiet).ran == ["stfpm__brick__seed1"]
    assert not checkpoint.exists()  # another configuration: it would resume the wrong run


def test_device_names_with_an_index_are_reduced_to_their_type():
    assert bench._device_type("cuda:0") == "cuda"
    assert bench._device_type("CPU") == "cpu"


def test_a_shard_without_explicit_categories_is_warned_about(tmp_path):
    (tmp_path / "data" / "brick" / "train" / "good").mkdir(parents=True)
    sweep = make_sweep(tmp_path / "out", categories=None, data=str(tmp_path / "data"))
    lines = []
    bench.run_sweep(sweep, shard="1/2", run_fn=FakeRun(), log=lines.append)
    assert "same --categories" in lines[0]


def test_a_resumed_run_records_it_and_its_wall_time_covers_earlier_training(tmp_path):
    class ResumedRun(FakeRun):
        def __call__(self, config):
            report = super().__call__(config)
            # 30.5 s of training in an earlier session, next to none in this one
            report["train_seconds"] = 30.5
            del report["run_seconds"]  # a run function that does not time itself
            report["history"] = {"seconds": 30.5, "session_seconds": 0.0, "resumed_from_epoch": 3}
            return report

    sweep = make_sweep(tmp_path, methods=("stfpm",), categories=("brick",), seeds=(1,))
    bench.run_sweep(sweep, run_fn=ResumedRun(), log=quiet)
    record = json.loads((tmp_path / "runs" / "stfpm__brick__seed1.json").read_text())
    assert record["resumed_from_epoch"] == 3
    assert record["session_wall_seconds"] < 1
    assert record["wall_seconds"] == pytest.approx(30.5 + record["session_wall_seconds"])
    assert record["wall_seconds"] >= record["train_seconds"]


# ----------------------------------------------------------------------------------------
# The label-free decisions beside the oracle's (issue 15), on hand-made run files
# ----------------------------------------------------------------------------------------


def hand_made_run(method, category, seed, metrics, label_free=None) -> dict:
    """A run file as the sweep writes it; ``label_free`` = (Dice, false goods, false bads)
    at the validation-quantile threshold, ``None`` for a run file older than that rule."""
    record = {
        "method": method,
        "category": category,
        "seed": seed,
        "profile": "quick",
        "config": {"profile": "quick", "backbone": "resnet18", "image_size": 64, "epochs": 2},
        "job": {
            "method": method,
            "category": category,
            "seed": seed,
            "key": f"{method}__{category}__seed{seed}",
        },
        **dict(
            zip(
                (
                    *("image_auroc", "pixel_auroc", "au_pro", "dice", "false_goods"),
                    *("false_bads", "train_seconds", "predict_seconds_per_image"),
                    *("parameters", "peak_memory_mb"),
                ),
                metrics,
                strict=True,
            )
        ),
    }
    if label_free is not None:
        dice, goods, bads = label_free
        record["thresholds"] = {
            "image_f1_oracle": {"dice": record["dice"], "false_goods": record["false_goods"]},
            "validation_quantile": {"dice": dice, "false_goods": goods, "false_bads": bads},
            "validation_pixel_quantile": {"dice": 0.99, "false_goods": 99, "false_bads": 99},
        }
    return record


def write_hand_made_runs(out: Path) -> None:
    runs = out / "runs"
    runs.mkdir(parents=True)
    for record in (
        hand_made_run("stfpm", "brick", 1, (0.9, 0.95, 0.8, 0.8, 1, 2, 10, 0.002, 1000, 100),
                      (0.5, 3, 0)),
        hand_made_run("stfpm", "brick", 2, (0.7, 0.85, 0.6, 0.6, 3, 0, 20, 0.004, 1000, 200),
                      (0.3, 5, 1)),
        hand_made_run("stfpm", "grass", 1, (0.8, 0.9, 0.7, 0.7, 0, 1, 30, 0.003, 1000, 300),
                      (0.4, 2, 2)),
        hand_made_run("fvv", "brick", 1, (0.6, 0.7, 0.5, 0.2, 4, 5, 40, 0.01, 2000, 50)),
    ):  # fmt: skip
        (runs / f"{record['job']['key']}.json").write_text(json.dumps(record))


def test_runs_carry_the_label_free_numbers_of_their_report(tmp_path):
    write_hand_made_runs(tmp_path)
    results = bench.merge(tmp_path, figures=False)
    by_key = {row["key"]: row for row in results.runs}
    assert {k: by_key["stfpm__brick__seed2"][k] for k in bench.LABEL_FREE_KEYS} == {
        "label_free_dice": 0.3,
        "label_free_false_goods": 5,
        "label_free_false_bads": 1,
    }  # the image-level validation quantile, not the pixel one
    assert all(by_key["fvv__brick__seed1"][k] is None for k in bench.LABEL_FREE_KEYS)
    assert results.cell("stfpm", "brick", "label_free_dice") == pytest.approx(0.4)
    assert results.cell("stfpm", "brick", "label_free_dice", "std") == pytest.approx(
        0.02**0.5
    )  # sample std of 0.5, 0.3
    overall = {row["method"]: row for row in results.overall}
    assert overall["stfpm"]["label_free_false_goods"] == pytest.approx(3.0)  # mean(4, 2)
    assert overall["stfpm"]["label_free_false_bads"] == pytest.approx(1.25)  # mean(0.5, 2)

    csv_lines = (tmp_path / "results.csv").read_text().splitlines()
    header = csv_lines[0].split(",")
    assert header[-4:] == [*bench.LABEL_FREE_KEYS, "peak_memory_mb"]
    row = dict(zip(header, csv_lines[1].split(","), strict=True))
    assert (row["key"], row["label_free_dice"], row["label_free_false_goods"]) == (
        "stfpm__brick__seed1",
        "0.5",
        "3",
    )
    assert csv_lines[-1].endswith(",,,,50")  # fvv: no label-free numbers, then peak MB
    assert "label_free_dice_mean" in (tmp_path / "summary.csv").read_text().splitlines()[0]


def test_the_result_records_carry_each_runs_wall_seconds(tmp_path):
    """Chapter 9 reads a run's whole time from ``results.runs``, not from its run file."""
    write_hand_made_runs(tmp_path)
    path = tmp_path / "runs" / "stfpm__brick__seed2.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "wall_seconds": 73.25}))
    results = bench.merge(tmp_path, figures=False)
    by_key = {row["key"]: row for row in results.runs}
    assert by_key["stfpm__brick__seed2"]["wall_seconds"] == 73.25
    assert by_key["stfpm__brick__seed1"]["wall_seconds"] is None  # a file written without it
    csv_lines = (tmp_path / "results.csv").read_text().splitlines()
    rows = [
        dict(zip(csv_lines[0].split(","), line.split(","), strict=True)) for line in csv_lines[1:]
    ]
    assert {row["key"]: row["wall_seconds"] for row in rows} == {
        "stfpm__brick__seed1": "",
        "stfpm__brick__seed2": "73.25",
        "stfpm__grass__seed1": "",
        "fvv__brick__seed1": "",
    }


def test_the_tables_show_label_free_decisions_beside_the_oracle_ones(tmp_path):
    write_hand_made_runs(tmp_path)
    results = bench.collect(tmp_path)
    assert bench.overall_table(results) == (
        "| method | image AUROC | pixel AUROC | AU-PRO | Dice (oracle t) | false goods (oracle) "
        "| false bads (oracle) | Dice (label-free t) | false goods (label-free) "
        "| false bads (label-free) | training s | ms per image | parameters | peak MB |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        "| stfpm | 0.800 | 0.900 | 0.700 | 0.700 | 1 | 1 | 0.400 | 3 | 1.25 | 22.5 | 3.0 "
        "| 1,000 | 225 |\n"
        "| fvv | 0.600 | 0.700 | 0.500 | 0.200 | 4 | 5 | – | – | – | 40.0 | 10.0 | 2,000 | 50 |\n"
    )
    assert bench.per_category_table(results) == (
        "| category | method | seeds | image AUROC | AU-PRO | Dice (oracle t) "
        "| Dice (label-free t) |\n"
        "|---|---|---:|---:|---:|---:|---:|\n"
        "| brick | stfpm | 2 | 0.800 ± 0.141 | 0.700 ± 0.141 | 0.700 ± 0.141 | 0.400 ± 0.141 |\n"
        "| brick | fvv | 1 | 0.600 | 0.500 | 0.200 | – |\n"
        "| grass | stfpm | 1 | 0.800 | 0.700 | 0.700 | 0.400 |\n"
    )
    markdown = bench.results_markdown(results)
    assert "at the oracle threshold (image-level F1-optimal on the test labels" in markdown
    assert "| method | profile | backbone | image size | epochs |\n|---|---|---|---:|---:|\n" in (
        markdown
    )
    assert "| stfpm | quick | resnet18 | 64 | 2 |\n" in markdown


def test_other_categories_are_the_other_embedded_textures_in_the_quick_profile(tmp_path):
    """What chapters 6–8 also train: the other textures found, never a reader's own folder,
    and nothing on MVTec AD (the full profile)."""
    from stad_utils.config import get_profile

    for name in ("gravel", "brick", "my_fabric", "grass"):  # my_fabric: a reader's folder
        (tmp_path / name / "train" / "good").mkdir(parents=True)
    quick = get_profile("quick")
    assert bench.other_categories(quick, tmp_path) == ["grass", "gravel"]
    assert bench.other_categories(quick.with_overrides(category="grass"), tmp_path) == [
        "brick",
        "gravel",
    ]
    shutil.rmtree(tmp_path / "gravel")
    assert bench.other_categories("quick", tmp_path) == ["grass"]
    assert bench.other_categories("full", tmp_path) == []
    assert bench.other_categories(quick.with_overrides(dataset="mvtec"), tmp_path) == []
