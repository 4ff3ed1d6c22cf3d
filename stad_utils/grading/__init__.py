"""The instructors' grader: ``python -m stad_utils grade SUBMISSIONS --out GRADES``.

* :mod:`.submissions` — which files are whose, and which chapter (the naming scheme);
* :mod:`.cells` — which of a notebook's code runs (definitions only, or all cells);
* :mod:`.sandbox` — one notebook graded in its own limited subprocess;
* :mod:`.worker` — that subprocess: the student's code, then the package's checks;
* :mod:`.report` — gradebook.csv, feedback/<student>.md, rubric.md, the summary;
* :mod:`.cli` — the ``grade`` command.

The exercises of each chapter come from the manifest that ``make student`` writes.
"""
