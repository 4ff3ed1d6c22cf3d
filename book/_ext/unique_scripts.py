"""Sphinx extension: each page loads each of its scripts once.

With Sphinx 7.4 the inline scripts that extensions register while the documents are read
(sphinx-thebe's ``const THEBE_JS_URL = ...``, sphinx-togglebutton's selector) reach every
page twice: the builder stores one copy with the file name ``None`` and one with ``""``,
which its duplicate check tells apart. A repeated ``const`` is a JavaScript SyntaxError on
every page (the browser test, tests/test_browser.py, reports it). This keeps the first
copy of each script, compared by file name (``None`` as ``""``) and attributes.
"""

from __future__ import annotations


def script_key(script) -> tuple:
    return (str(script.filename or ""), tuple(sorted(script.attributes.items())))


def keep_first_copy_of_each_script(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        key = script_key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique  # the builder's own list, restored after each page


def setup(app):
    app.connect("html-page-context", keep_first_copy_of_each_script)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
