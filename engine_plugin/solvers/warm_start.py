"""Warm-started gradient descent (``--inference warmstart``, tagging paper §5.3): the
``--gd-steps`` descent of :mod:`~engine_plugin.solvers.gradient_descent` started from the
inference network's logits instead of ``--gd-init``. With ``--gd-steps 0`` it returns the
inference network's output."""

from engine_plugin.solvers.gradient_descent import descend_problem
from engine_plugin.solvers.registry import Problem, register_solver


@register_solver("warmstart")
class WarmStartSolver:
    """Gradient descent on the energy from ``A_Ψ(x)``."""

    needs_exact = False
    uses_infnet = True

    def solve(self, problem: Problem):
        """``(None, logits (B, T, V))`` after ``--gd-steps`` updates from the infnet's."""
        problem.require_infnet(self.name)
        start = problem.infnet_logits(problem.infnet)
        return None, descend_problem(problem, start, self.name)
