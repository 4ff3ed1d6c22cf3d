"""The Colab install cell, rehearsed: ``pip install "stad-utils @ git+<repository>"``.

Each chapter's setup cell installs the package from git on Colab. A dependency missing
from ``pyproject.toml``, or a file of the package that the build leaves out, would fail
there first. This test installs the CURRENT working tree (committed to a temporary commit
that no branch points to, pushed into a temporary bare clone) with pip from
``git+file://`` into a fresh virtual environment, then in that environment:

* imports every module of the installed package (and checks it is the installed copy);
* runs every chapter's import lines;
* checks that every file under ``stad_utils/`` in the commit was installed;
* checks that every third-party distribution those imports loaded is declared: reachable
  from ``stad-utils[book]``'s requirements (a forgotten dependency fails here).

To stay fast and offline, the fresh environment sees the lead environment's installed
libraries through a ``.pth`` line (torch is not installed again) and pip runs with
``--no-index --no-build-isolation``: the dependencies must resolve against installed
distributions, or the install fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"


def git(*args: str, env: dict | None = None) -> str:
    result = subprocess.run(
        ["git", *args], cwd=REPO, env=env, check=True, capture_output=True, text=True
    )
    return result.stdout.strip()


def commit_working_tree(scratch: Path) -> str:
    """A commit of the working tree as it is (tracked and new files, minus ignored ones),
    made with a temporary index: no branch, index or file of the checkout changes."""
    env = {**os.environ, "GIT_INDEX_FILE": str(scratch / "index")}
    git("read-tree", "HEAD", env=env)
    git("add", "-A", env=env)
    tree = git("write-tree", env=env)
    return git("commit-tree", tree, "-p", "HEAD", "-m", "git-install test", env=env)


def chapter_import_lines() -> dict[str, str]:
    """Per chapter, its top-level ``import``/``from`` lines (with their continuations)."""
    chapters = {}
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        lines = []
        for cell in nbformat.read(str(path), as_version=4).cells:
            if cell.cell_type != "code":
                continue
            statement = []
            for line in cell.source.splitlines():
                if statement or line.startswith(("import ", "from ")):
                    statement.append(line)
                    joined = "\n".join(statement)
                    if joined.count("(") == joined.count(")"):  # the statement is complete
                        lines.append(joined)
                        statement = []
        chapters[path.stem] = "\n".join(lines)
    return chapters


# Runs inside the fresh environment; prints a JSON report.
CHECK = r"""
import ast, importlib, importlib.metadata as md, json, re, sys
from pathlib import Path
from packaging.markers import default_environment
from packaging.requirements import Requirement

chapters = json.loads(sys.argv[1])
report = {"import_errors": {}, "chapter_errors": {}}
dist = md.distribution("stad-utils")
installed = sorted(str(f) for f in dist.files if str(f).startswith("stad_utils/"))
report["installed_files"] = installed
modules = sorted(
    f[:-3].replace("/", ".").removesuffix(".__init__") for f in installed if f.endswith(".py")
)
for name in modules:
    try:
        importlib.import_module(name)
    except Exception as error:
        report["import_errors"][name] = f"{type(error).__name__}: {error}"
import stad_utils
report["package_file"] = stad_utils.__file__
for chapter, code in chapters.items():
    try:
        exec(compile(code, chapter, "exec"), {})
    except Exception as error:
        report["chapter_errors"][chapter] = f"{type(error).__name__}: {error}"

def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()

# the distributions stad-utils[book] requires, transitively
declared, todo = set(), [("stad-utils", frozenset({"book"}))]
while todo:
    name, extras = todo.pop()
    try:
        requires = md.distribution(name).requires or []
    except md.PackageNotFoundError:
        continue
    for text in requires:
        requirement = Requirement(text)
        environments = [{**default_environment(), "extra": e} for e in (extras or {""})]
        if requirement.marker and not any(requirement.marker.evaluate(e) for e in environments):
            continue
        key = (norm(requirement.name), frozenset(requirement.extras))
        if key not in declared:
            declared.add(key)
            todo.append((requirement.name, frozenset(requirement.extras)))
declared_names = {name for name, _ in declared}
providers = md.packages_distributions()
stdlib = set(sys.stdlib_module_names)
# what the package and the chapters import themselves (a library's own optional imports,
# e.g. httpcore trying trio when it happens to be installed, are that library's business)
named = set()
sources = [p.read_text() for p in Path(stad_utils.__file__).parent.rglob("*.py")]
for code in [*sources, *chapters.values()]:
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            named |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            named.add(node.module.split(".")[0])
loaded = {m.split(".")[0] for m in list(sys.modules)} & named
loaded -= stdlib | {"stad_utils", "__main__"}
undeclared = {}
for module in sorted(loaded):
    dists = {norm(d) for d in providers.get(module, [])}
    if dists and not dists & (declared_names | {"stad-utils"}):
        undeclared[module] = sorted(dists)
report["undeclared"] = undeclared
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def fresh_install(tmp_path_factory):
    inside = subprocess.run(["git", "rev-parse", "--git-dir"], cwd=REPO, capture_output=True)
    if inside.returncode:
        pytest.skip("not a git checkout: there is no repository to install from")
    scratch = tmp_path_factory.mktemp("git_install")
    commit = commit_working_tree(scratch)
    clone = scratch / "clone.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(clone)], check=True)
    git("push", "--quiet", str(clone), f"{commit}:refs/heads/main")

    venv = scratch / "venv"
    # Without pip: pip runs from this environment (--python), and no old setuptools of
    # the fresh environment shadows the one the build needs.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # The lead environment's libraries, visible but not its (editable) stad_utils: a
    # .pth line only adds a folder to sys.path; the editable finder's .pth is not run.
    Path(site, "_lead_environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-index",
            "--no-build-isolation",
            "--disable-pip-version-check",
            f"stad-utils @ git+file://{clone}@main",
        ],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, f"pip install from git failed:\n{install.stderr[-4000:]}"
    check = subprocess.run(
        [str(python), "-c", CHECK, json.dumps(chapter_import_lines())],
        capture_output=True,
        text=True,
        cwd=scratch,  # not the checkout: nothing may be imported from its folder
        env={**os.environ, "PYTHONPATH": "", "MPLBACKEND": "Agg"},
    )
    assert check.returncode == 0, check.stderr[-4000:]
    tracked = git("ls-tree", "-r", "--name-only", commit, "stad_utils").splitlines()
    return json.loads(check.stdout), Path(site), tracked


def test_every_module_imports_from_the_installed_copy(fresh_install):
    report, site, _ = fresh_install
    assert report["import_errors"] == {}
    assert Path(report["package_file"]).is_relative_to(site)
    assert len([f for f in report["installed_files"] if f.endswith(".py")]) >= 40


def test_every_chapters_imports_work(fresh_install):
    report, _, _ = fresh_install
    assert report["chapter_errors"] == {}
    assert len(chapter_import_lines()) >= 9


def test_every_file_of_the_package_is_installed(fresh_install):
    report, _, tracked = fresh_install
    missing = set(tracked) - set(report["installed_files"])
    assert not missing, f"files of stad_utils/ the build leaves out: {sorted(missing)}"


def test_every_library_loaded_is_a_declared_dependency(fresh_install):
    report, _, _ = fresh_install
    assert report["undeclared"] == {}, (
        "modules imported by the package or the chapters come from distributions that "
        f"stad-utils[book] does not require (add them to pyproject.toml): {report['undeclared']}"
    )


def test_chapter_import_lines_are_found():
    """The extractor sees multi-line imports whole (a broken one would hide imports)."""
    lines = chapter_import_lines()["09_comparing_methods"]
    assert "from stad_utils.bench import (" in lines and "    run_sweep,\n)" in lines
    compile(lines, "chapter 9", "exec")
