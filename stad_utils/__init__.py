"""stad_utils: the package behind the course book *Student–Teacher Anomaly Detection*."""

import os
import sys

__version__ = "0.1.0"

# torch's CPU threads then sleep between operations instead of spinning. When another
# process keeps a core busy, a spinning thread takes the core its partner needs, and the
# small operations of the patch networks ran up to 14x slower (benchmarks/bench_threads.py;
# on an idle machine it costs a few percent). OpenMP reads this once, when torch loads, so
# it only helps when stad_utils is imported first (the command line); `make` and the tests
# set it for the notebooks' kernels. A value the user set is kept.
if "torch" not in sys.modules:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
