"""Every figure the book shows, with one look.

Submodules: :mod:`~stad_utils.viz.style` (colours, fonts), :mod:`~stad_utils.viz.grids`
(image / mask / map grids), :mod:`~stad_utils.viz.curves` (ROC, PRO and threshold
figures), :mod:`~stad_utils.viz.training` (loss curves, score histograms),
:mod:`~stad_utils.viz.comparison` (methods compared across categories: the benchmark's
figures) and :mod:`~stad_utils.viz.explorer` (ipywidgets explorers and their static twins).
Each function returns the matplotlib Figure, so notebooks can save or caption it.
"""
