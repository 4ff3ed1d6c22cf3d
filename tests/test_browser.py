"""The built book in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by Selenium) opens every page from disk with the network cut
off, as a reader without internet would, and checks what a reader sees.

The site is the strict build of tests/test_book.py (the session fixture ``built_book``,
built once). To check another build, point ``STAD_SITE`` at its ``html`` folder. A
screenshot of each page is saved beside the site, in ``_build/screenshots/``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SITE_ENV = "STAD_SITE"
NOT_PAGES = ("_static", "_sources", "_images", "_sphinx_design_static")
# The tallest screenshot taken (pixels): long chapters are cut there.
MAX_SCREENSHOT_HEIGHT = 16000
COMMAND_TIMEOUT = 600  # seconds for one browser command (selenium's default: 120)

pytestmark = [pytest.mark.book, pytest.mark.xdist_group("book")]

# Runs in each page once it has loaded: waits for MathJax's first typesetting and for
# every image, then reports what the page shows. Text inside code (<pre>, <code>) is left
# out of the raw-TeX search, since code may hold a backslash and a parenthesis.
INSPECT_PAGE = r"""
const done = arguments[arguments.length - 1];
const mathjax = window.MathJax && window.MathJax.startup && window.MathJax.startup.promise;
const images = [...document.images].map(image => image.complete ? null :
    new Promise(settle => { image.onload = image.onerror = settle; }));
Promise.all([mathjax || Promise.resolve(), ...images]).then(() => {
  const prose = document.querySelector("main") || document.body;
  const copy = prose.cloneNode(true);
  copy.querySelectorAll("pre, code, script, style, mjx-container").forEach(e => e.remove());
  const outputs = [...document.querySelectorAll(".cell_output .output")];
  const solutions = [...document.querySelectorAll(".solution")];
  done({
    mathjaxLoaded: Boolean(mathjax),
    mathElements: document.querySelectorAll(".math").length,
    untypesetMath: [...document.querySelectorAll(".math")]
        .filter(e => !e.querySelector("mjx-container"))
        .map(e => e.textContent.slice(0, 80)),
    texErrors: [...document.querySelectorAll("mjx-merror")]
        .map(e => e.getAttribute("data-mjx-error") || e.textContent),
    text: copy.textContent,
    brokenImages: [...document.images]
        .filter(image => !(image.complete && image.naturalWidth > 0))
        .map(image => image.getAttribute("src")),
    images: document.images.length,
    errorOutputs: outputs.filter(o => o.matches(".traceback, .error")).length,
    outputTexts: outputs.map(o => o.textContent),
    stderrTexts: outputs.filter(o => o.matches(".stderr")).map(o => o.textContent),
    exercises: document.querySelectorAll(".exercise").length,
    solutions: solutions.length,
    // sphinx-togglebutton folds a solution to its title: its body takes no height.
    openSolutions: solutions.filter(s => !s.classList.contains("toggle-hidden") ||
        [...s.children].some(c => !c.matches(".admonition-title") && c.offsetHeight > 0))
        .length,
    height: Math.max(document.body.scrollHeight, document.documentElement.scrollHeight),
    windowChrome: window.outerHeight - window.innerHeight,
  });
}, error => done({failed: String(error)}));
"""

RAW_TEX = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$\$")
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|^\w*Error: ", re.MULTILINE)
REDIRECT = re.compile(r'http-equiv="refresh" content="\d+; *url=(?P<target>[^"]+)"', re.I)
PROGRESS_LINE = re.compile(r"^(?P<desc>[^\n:]*): +\d+%\|", re.MULTILINE)


@dataclass
class Page:
    """What the browser found on one page."""

    name: str
    console_errors: list[str]
    inspected: dict
    screenshot: Path
    expected_exercises: int | None = None
    expected_solutions: int | None = None

    def raw_tex(self) -> list[str]:
        text = self.inspected["text"]
        return [text[max(m.start() - 30, 0) : m.end() + 30] for m in RAW_TEX.finditer(text)]

    def repeated_progress(self) -> dict[str, int]:
        """Progress descriptions written more than once in one output block."""
        repeated = {}
        for block in self.inspected["stderrTexts"]:
            counts = Counter(m["desc"].strip() for m in PROGRESS_LINE.finditer(block))
            repeated.update({desc: n for desc, n in counts.items() if n > 1})
        return repeated


def source_notebook(page_name: str) -> Path | None:
    """notebooks/06_stfpm.html → notebooks/06_stfpm.ipynb, if that is a chapter."""
    if not page_name.startswith("notebooks/"):
        return None
    path = REPO / Path(page_name).with_suffix(".ipynb")
    return path if path.exists() else None


def count_directives(notebook: Path) -> tuple[int, int]:
    """How many exercises and solutions the chapter's Markdown declares."""
    cells = json.loads(notebook.read_text())["cells"]
    markdown = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    exercises = len(re.findall(r"\{exercise(?:-start)?\}", markdown))
    solutions = len(re.findall(r"\{solution(?:-start)?\}", markdown))
    return exercises, solutions


@pytest.fixture(scope="module")
def site(request) -> Path:
    given = os.environ.get(SITE_ENV)
    if not given:
        return request.getfixturevalue("built_book")
    path = Path(given).expanduser().resolve()
    if not (path / "index.html").exists():
        pytest.fail(f"{SITE_ENV}={given} has no index.html: point it at a built html folder")
    return path


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium with every host name unresolvable (offline), or a skip."""
    try:
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
    except ImportError:
        pytest.skip("selenium is not installed: pip install -e '.[dev]'")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    if not (chromium and chromedriver):
        pytest.skip(
            "No headless Chromium here (chromium and chromedriver not on PATH): on Debian, "
            "apt-get install chromium chromium-driver (.ci/run does that when it can)."
        )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        "--host-resolver-rules=MAP * ~NOTFOUND",  # no network: the book must not need it
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(
            options=options, service=webdriver.ChromeService(executable_path=chromedriver)
        )
    except WebDriverException as error:
        pytest.skip(f"Headless Chromium did not start: {error.msg}")
    # Generous limits: a long chapter on a busy 2-core machine is slow to lay out and to
    # photograph, and a slow machine must not fail a correct book.
    driver.command_executor.client_config.timeout = COMMAND_TIMEOUT
    driver.set_script_timeout(COMMAND_TIMEOUT)
    driver.set_page_load_timeout(COMMAND_TIMEOUT)
    yield driver
    driver.quit()


def redirect_target(path: Path) -> str | None:
    """Where a redirect page (the site's index.html) sends the reader, else None."""
    found = REDIRECT.search(path.read_text(errors="replace")[:2000])
    return found["target"] if found else None


def html_pages(site: Path) -> list[str]:
    """The site's pages, less redirects: a page that navigates away while the browser
    inspects it would leave the inspection waiting for a page that is gone."""
    pages = [
        path.relative_to(site).as_posix()
        for path in sorted(site.rglob("*.html"))
        if path.relative_to(site).parts[0] not in NOT_PAGES and not redirect_target(path)
    ]
    assert pages, f"no pages in {site}"
    return pages


def visit(driver, site: Path, name: str, screenshots: Path) -> Page:
    driver.get((site / name).as_uri())
    inspected = driver.execute_async_script(INSPECT_PAGE)
    assert "failed" not in inspected, f"{name}: {inspected}"
    # The window as tall as the page, so one screenshot shows all of it.
    height = min(inspected["height"], MAX_SCREENSHOT_HEIGHT) + inspected["windowChrome"]
    driver.set_window_size(1280, max(height, 900))
    screenshot = screenshots / (name.replace("/", "__").removesuffix(".html") + ".png")
    driver.save_screenshot(str(screenshot))
    driver.set_window_size(1280, 900)
    console_errors = [
        entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"
    ]
    page = Page(name, console_errors, inspected, screenshot)
    notebook = source_notebook(name)
    if notebook is not None:
        page.expected_exercises, page.expected_solutions = count_directives(notebook)
    return page


@pytest.fixture(scope="module")
def pages(site, browser) -> list[Page]:
    """Every page of the site, loaded once."""
    screenshots = site.parent / "screenshots"
    shutil.rmtree(screenshots, ignore_errors=True)
    screenshots.mkdir(parents=True)
    return [visit(browser, site, name, screenshots) for name in html_pages(site)]


def problems(pages: list[Page], check) -> dict[str, object]:
    found = {page.name: check(page) for page in pages}
    return {name: what for name, what in found.items() if what}


def test_every_chapter_has_a_page(request):
    if os.environ.get(SITE_ENV):
        pytest.skip(f"{SITE_ENV} may point at a partial build")
    names = {page.name for page in request.getfixturevalue("pages")}
    missing = [nb.stem for nb in sorted((REPO / "notebooks").glob("*.ipynb"))]
    missing = [stem for stem in missing if f"notebooks/{stem}.html" not in names]
    assert not missing, f"chapters without a page: {missing}"


def test_the_front_page_leads_to_a_page_that_was_checked(site, pages):
    target = redirect_target(site / "index.html")
    assert target is not None, "index.html is not the redirect Jupyter Book writes"
    assert target in {page.name for page in pages}


def test_no_javascript_errors(pages):
    assert not problems(pages, lambda page: page.console_errors)


def test_every_equation_is_typeset_offline(pages):
    with_math = [page for page in pages if page.inspected["mathElements"]]
    assert with_math, "no page has an equation: is the site the book?"
    assert all(page.inspected["mathjaxLoaded"] for page in with_math), (
        "MathJax did not load on "
        + str([page.name for page in with_math if not page.inspected["mathjaxLoaded"]])
    )
    assert not problems(pages, lambda page: page.inspected["untypesetMath"])
    assert not problems(pages, lambda page: page.inspected["texErrors"])
    assert not problems(pages, Page.raw_tex)


def test_every_image_loads(pages):
    assert sum(page.inspected["images"] for page in pages) > 0
    assert not problems(pages, lambda page: page.inspected["brokenImages"])


def test_no_error_or_traceback_output(pages):
    assert not problems(pages, lambda page: page.inspected["errorOutputs"])
    assert not problems(
        pages,
        lambda page: [
            m.group() for t in page.inspected["outputTexts"] for m in TRACEBACK.finditer(t)
        ],
    )


def test_each_progress_bar_shows_one_line(pages):
    assert not problems(pages, Page.repeated_progress)


def test_exercise_boxes_and_folded_solutions_are_present(pages):
    chapters = [page for page in pages if page.expected_exercises is not None]
    assert chapters, "no chapter page found"
    for page in chapters:
        found = page.inspected
        assert found["exercises"] == page.expected_exercises, page.name
        assert found["solutions"] == page.expected_solutions, page.name
        assert found["openSolutions"] == 0, f"{page.name}: a solution is shown unfolded"
    assert sum(page.expected_exercises for page in chapters) > 0


def test_a_screenshot_of_every_page(pages):
    from PIL import Image

    for page in pages:
        with Image.open(page.screenshot) as image:
            assert image.width == 1280, page.name
            expected = min(page.inspected["height"], MAX_SCREENSHOT_HEIGHT)
            assert image.height >= min(expected, 700), page.name
