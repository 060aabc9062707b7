"""Ways to solve ``argmin_y E(x, y)``, each written against ``StructuredEnergy`` and chosen
by ``--inference`` through :mod:`~engine_plugin.solvers.registry`. Importing the package
registers them, in the order ``viterbi, gd, infnet, tailored, warmstart``."""

from engine_plugin.solvers import exact, gradient_descent, infnet, tailoring, warm_start  # noqa: F401
from engine_plugin.solvers.registry import SOLVERS, Problem, register_solver, solver_for  # noqa: F401
