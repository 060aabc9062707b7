"""Linear-chain CRF: ``LinearChainCRF`` (energy, log-partition, marginals, Viterbi, k-best)
and ``label_constraints`` (allowed transitions of BIO / BIOES label sets).

One job a module: ``masks`` finds the positions of valid masks (validated by
:func:`engine_plugin.masks.check_mask`), ``forward_backward`` computes log Z and the
marginals, ``viterbi`` and ``kbest`` decode, ``constraints`` builds and applies allowed
transitions, ``linear_chain`` ties them into the ``nn.Module``.
"""

from engine_plugin.crf.constraints import LabelConstraints, detect_scheme, label_constraints
from engine_plugin.crf.linear_chain import LinearChainCRF

__all__ = ["LinearChainCRF", "LabelConstraints", "detect_scheme", "label_constraints"]
