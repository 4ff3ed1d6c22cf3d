"""The one Markdown table helper, its metric list, and the tables built with it."""

import ast
import json
import re
from pathlib import Path

import numpy as np
import pytest

from stad_utils import metrics
from stad_utils.data.summary import statistics_table
from stad_utils.tables import METRIC_COLUMNS, MISSING, Column, markdown_table, metric_columns

PACKAGE = Path(__file__).resolve().parents[1] / "stad_utils"
NOTEBOOKS = sorted((PACKAGE.parent / "notebooks").glob("*.ipynb"))

COLUMNS = [
    Column("name", align="left"),
    Column("score", "AUROC", "{:.2f}"),
    Column("count", "n", lambda n: f"{n:,}", mean_format="{:.1f}"),
]


def test_header_alignment_cells_and_final_newline():
    table = markdown_table(
        [{"name": "carpet", "score": 0.987, "count": 1234}, {"name": "grid", "score": 0.5}],
        COLUMNS,
    )
    assert table == (
        "| name | AUROC | n |\n"
        "|---|---:|---:|\n"
        "| carpet | 0.99 | 1,234 |\n"
        f"| grid | 0.50 | {MISSING} |\n"
    )


def test_none_nan_and_absent_values_show_the_missing_marker():
    rows = [{"name": "a", "score": None, "count": float("nan")}, {"name": "b"}]
    lines = markdown_table(rows, COLUMNS, missing="?").splitlines()
    assert lines[2:] == ["| a | ? | ? |", "| b | ? | ? |"]


def test_text_values_are_shown_as_they_are_whatever_the_format():
    table = markdown_table([{"name": "total", "score": "**0.9**", "count": "3 / 4"}], COLUMNS)
    assert table.splitlines()[2] == "| total | **0.9** | 3 / 4 |"


def test_mean_row_skips_missing_values_and_uses_the_mean_format():
    rows = [
        {"name": "a", "score": 0.2, "count": 1},
        {"name": "b", "score": None, "count": 2},
        {"name": "c", "score": 0.6},
    ]
    last = markdown_table(rows, COLUMNS, mean_label="mean").splitlines()[-1]
    # score: (0.2 + 0.6) / 2, None skipped; count: (1 + 2) / 2, the absent key skipped
    assert last == "| mean | 0.40 | 1.5 |"


def test_mean_row_nan_makes_the_mean_unknown_and_mean_false_leaves_the_cell_empty():
    columns = [COLUMNS[0], Column("score", format="{:.2f}"), Column("t", mean=False)]
    rows = [{"name": "a", "score": float("nan"), "t": 1}, {"name": "b", "score": 0.5, "t": 2}]
    last = markdown_table(rows, columns, mean_label="**mean**").splitlines()[-1]
    assert last == f"| **mean** | {MISSING} |  |"


def test_no_rows_gives_the_header_only():
    assert markdown_table([], COLUMNS) == "| name | AUROC | n |\n|---|---:|---:|\n"


def test_bad_columns_are_clear_errors():
    with pytest.raises(ValueError, match="at least one column"):
        markdown_table([{"a": 1}], [])
    with pytest.raises(ValueError, match="align must be 'left' or 'right', not 'centre'"):
        Column("a", align="centre")


def test_metric_columns_start_with_the_report_keys_in_order():
    assert tuple(METRIC_COLUMNS)[: len(metrics.MetricsReport.KEYS)] == metrics.MetricsReport.KEYS
    assert metrics.MetricsReport.KEYS[:3] == metrics.THRESHOLD_FREE_KEYS
    titles = [c.header for c in metric_columns("image_auroc", "au_pro", "dice")]
    assert titles == ["image AUROC", "AU-PRO", "Dice"]
    assert [c.key for c in metric_columns()] == list(METRIC_COLUMNS)
    assert METRIC_COLUMNS["predict_seconds_per_image"].show(0.0123) == "12.3"


def test_metric_columns_apply_changes_and_reject_unknown_keys():
    (column,) = metric_columns("au_pro", title="AU-PRO (FPR ≤ 0.3)")
    assert (column.header, column.show(0.91234)) == ("AU-PRO (FPR ≤ 0.3)", "0.912")
    with pytest.raises(ValueError, match=r"Unknown metric \['auc'\]: use one of image_auroc"):
        metric_columns("auc")


def test_tabulate_keeps_its_table_byte_for_byte():
    reports = {
        "carpet": dict(
            image_auroc=0.98765, pixel_auroc=0.91234, au_pro=0.8, dice=0.5555,
            threshold=0.012345, false_goods=3, false_bads=12,
        ),
        "grid": dict(
            image_auroc=1.0, pixel_auroc=0.5, au_pro=np.nan, dice=0.1,
            threshold=123.456, false_goods=0.5, false_bads=1234,
        ),
    }  # fmt: skip
    assert metrics.tabulate(reports) == (
        "| category | image AUROC | pixel AUROC | AU-PRO | Dice | threshold | false goods "
        "| false bads |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|\n"
        "| carpet | 0.988 | 0.912 | 0.800 | 0.555 | 0.0123 | 3 | 12 |\n"
        "| grid | 1.000 | 0.500 |  | 0.100 | 123 | 0.500 | 1234 |\n"
        "| **mean** | 0.994 | 0.706 |  | 0.328 |  | 1.8 | 623.0 |"
    )


def test_statistics_table_keeps_its_table_byte_for_byte():
    rows = [
        dict(category="a", train=10, val=2, test_good=3, test_defective=4,
             defect_types=["x", "y"], mean_defect_area_percent=1.23456),
        dict(category="b", train=1, val=0, test_good=0, test_defective=0, defect_types=[],
             mean_defect_area_percent=0.0),
    ]  # fmt: skip
    assert statistics_table(rows) == (
        "| category | train | val | test good | test defective | defect types "
        "| mean defect area |\n"
        "|---|---:|---:|---:|---:|---|---:|\n"
        "| a | 10 | 2 | 3 | 4 | x, y | 1.23 % |\n"
        "| b | 1 | 0 | 0 | 0 |  | 0.00 % |\n"
    )


def test_tables_are_built_in_one_place():
    """No module of the package starts a Markdown table line by hand (``"| "``, ``"|---"``)."""
    by_hand = {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if path.name != "tables.py" and any(s in path.read_text() for s in ('"| ', '"|---'))
    }
    assert by_hand == set(), f"build these tables with stad_utils.tables: {by_hand}"


def _code_cells(notebook: Path) -> list[tuple[int, str]]:
    """``(index, source)`` of each code cell; IPython's ``%``/``!`` lines become ``pass``."""
    cells = json.loads(notebook.read_text())["cells"]
    return [
        (i, re.sub(r"^(\s*)[%!].*$", r"\1pass", "".join(cell["source"]), flags=re.M))
        for i, cell in enumerate(cells)
        if cell["cell_type"] == "code"
    ]


def _metric_name_lists(source: str) -> list[str]:
    """Tuples, lists and sets written with two or more metric names (keys of
    :data:`METRIC_COLUMNS`): a list of metrics kept by hand instead of the package's."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            names = [
                e.value
                for e in node.elts
                if isinstance(e, ast.Constant) and e.value in METRIC_COLUMNS
            ]
            if len(names) >= 2:
                found.append(f"line {node.lineno}: {names}")
    return found


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebooks_build_tables_with_the_helper_and_the_metric_list(notebook):
    """No chapter writes a Markdown table's separator row (``|---``) or a list of metric
    names by hand: its tables go through :func:`markdown_table`, its metric names come from
    ``metrics.THRESHOLD_FREE_KEYS``, ``MetricsReport.KEYS`` or :data:`METRIC_COLUMNS`."""
    tables = [i for i, source in _code_cells(notebook) if "|---" in source]
    lists = [f"cell {i}, {hit}" for i, s in _code_cells(notebook) for hit in _metric_name_lists(s)]
    assert (tables, lists) == ([], []), f"{notebook.name}: tables in cells {tables}; {lists}"


def test_the_metric_list_check_finds_what_it_looks_for():
    source = (
        'keys = ("image_auroc", "pixel_auroc", "au_pro")\n'
        'for key in ["dice", "threshold"]: pass\n'
        'glue("au_pro", report["au_pro"])  # one name is not a list\n'
        'pair = ("au_pro", "train_seconds"), ("error", "fvv")\n'
        "keys = (*metrics.THRESHOLD_FREE_KEYS, 'dice')\n"
    )
    assert sorted(_metric_name_lists(source)) == [
        "line 1: ['image_auroc', 'pixel_auroc', 'au_pro']",
        "line 2: ['dice', 'threshold']",
        "line 4: ['au_pro', 'train_seconds']",
    ]


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _private_names_used_across_modules(source: str) -> list[str]:
    """``from x import _name``, and ``name._private`` (also ``a.b._private``) where ``name``
    was imported: another module's private names, which it may change without notice.
    Only the package's own modules are checked (``nn.modules.batchnorm._BatchNorm`` is
    torch's business)."""
    tree = ast.parse(source)
    modules, found = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {
                alias.asname or alias.name.split(".")[0]
                for alias in node.names
                if alias.name.split(".")[0] == "stad_utils"
            }
        elif isinstance(node, ast.ImportFrom) and (
            node.level or (node.module or "").split(".")[0] == "stad_utils"
        ):
            for alias in node.names:
                if _private(alias.name):
                    found.append(".".join(filter(None, [node.module, alias.name])))
                else:
                    modules.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in modules:
                found.append(f"{ast.unparse(node.value)}.{node.attr}")
    return found


@pytest.mark.parametrize(
    "module", sorted(str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py"))
)
def test_no_private_reach_ins(module):
    """No module of the package uses another module's private names: what one module needs
    from another is public API (issue 13)."""
    assert _private_names_used_across_modules((PACKAGE / module).read_text()) == []


def test_the_reach_in_check_finds_what_it_looks_for():
    source = (
        "from stad_utils import metrics\nfrom .grids import _hide_axes, plot\n"
        "from ..backbones import FeatureExtractor\n"
        "def f(x, extractor):\n"
        "    self_made._ok, extractor._plan  # not imported names: not checked\n"
        "    return metrics._as_scores(x), FeatureExtractor._plan, metrics.as_scores(x)\n"
        "import stad_utils.models.dense\nfrom . import _helpers\nimport torch\n"
        "from torch import nn\nnn.modules.batchnorm._BatchNorm, torch._C  # not the package's\n"
        "y = stad_utils.models.dense._unwarp(x, 2), x.__class__, self._own\n"
    )
    assert sorted(_private_names_used_across_modules(source)) == [
        "FeatureExtractor._plan",
        "_helpers",
        "grids._hide_axes",
        "metrics._as_scores",
        "stad_utils.models.dense._unwarp",
    ]
