"""Exact minimisation (``--inference viterbi``) for energies that have an exact minimiser.

Only the linear-chain CRF energy of ``sequence_labeling`` has one (Viterbi, O(n·L²)); the
registry refuses this solver for other tasks. k-best decoding stays in the tagging
generator, which asks the CRF energy for it.
"""

from engine_plugin.solvers.registry import Problem, register_solver


@register_solver("viterbi")
class ExactSolver:
    """``energy.exact_minimum`` over the paths ``problem.constraints`` allow (all if None;
    constraints are the CRF energy's ``LabelConstraints``)."""

    needs_exact = True
    uses_infnet = False

    def solve(self, problem: Problem):
        """``(outputs (B, T), None)``: the minimum-energy outputs."""
        if problem.constraints is None:
            outputs, _ = problem.energy.exact_minimum(problem.context, problem.mask)
        else:
            outputs, _ = problem.energy.exact_minimum(problem.context, problem.mask,
                                                      problem.constraints)
        return outputs, None
