"""Every figure the book shows, with one look.

Submodules: :mod:`~stad_utils.viz.style` (colours, fonts), :mod:`~stad_utils.viz.grids`
(image / mask / map grids), :mod:`~stad_utils.viz.curves` (ROC and PRO curves).
Each function returns the matplotlib Figure, so notebooks can save or caption it.
"""
