"""The inference network alone (``--inference infnet``): one forward pass, ``A_Ψ(x)``."""

from engine_plugin.solvers.registry import Problem, register_solver


@register_solver("infnet")
class InfnetSolver:
    """The logits of the task's inference network; the energy is not consulted."""

    needs_exact = False
    uses_infnet = True

    def solve(self, problem: Problem):
        """``(None, logits (B, T, V))`` of ``problem.infnet``."""
        problem.require_infnet(self.name)
        return None, problem.infnet_logits(problem.infnet)
