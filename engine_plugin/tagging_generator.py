"""The generator that ``fairseq-generate --task sequence_labeling`` uses.

``--inference`` picks the method; all are measured against the same frozen CRF energy:

- ``viterbi``: exact minimum (``--path`` is the CRF).
- ``gd``: gradient descent on relaxed outputs (``--path`` is the CRF); ``--gd-oracle``
  picks the best (steps, rate) per sentence from a grid, using the gold labels, as the
  tagging paper's appendix does.
- ``infnet``: one forward pass of an inference network (``--path`` is the infnet,
  ``--energy-path`` the CRF it was trained against).
- ``tailored``: a per-sentence copy of the infnet fine-tuned on the energy.
- ``warmstart``: gradient descent started from the infnet's logits.

Decoding options (``viterbi`` only, the one exact method): ``--nbest K`` returns the K
lowest-energy labellings per sentence (k-best Viterbi), in increasing energy (fewer for a
sentence with fewer labellings); ``--constrain-labels`` decodes only paths allowed by the
BIO/BIOES scheme of the label names. The other methods find one labelling and refuse both.
``--marginal-scores`` (any method) puts log p(y_t = label | x) under the energy into the
hypotheses' positional scores (``P-`` lines). Search error stays measured against the
unconstrained minimum of the energy.
"""

import logging

import torch

from engine_plugin.crf import detect_scheme, label_constraints
from engine_plugin.energies.crf_energy import CRFEnergy
from engine_plugin.report import start_report
from engine_plugin.solvers.checks import DivergedError
from engine_plugin.solvers.registry import Problem

logger = logging.getLogger(__name__)


class TaggingGenerator:
    """Labels a batch with the chosen solver and returns fairseq hypotheses.

    Args:
        model: the ``--path`` model: a CRF energy for viterbi/gd, else an inference network.
        energy: the frozen ``CRFEnergy`` that every method is measured against.
        labels: the task's ``LabelSpace``.
        cfg: the task config (``inference``, ``gd_*``, ``tailor_*``, ``constrain_labels``,
            ``marginal_scores`` options).
        solver: the registered solver class of ``cfg.inference``
            (:func:`engine_plugin.solvers.registry.solver_for`).
        nbest: hypotheses per sentence (``--nbest``); more than 1 needs ``viterbi``.
    """

    def __init__(self, model, energy: CRFEnergy, labels, cfg, solver, nbest: int = 1):
        self.inference = str(cfg.inference)
        self.model, self.energy, self.labels, self.cfg = model, energy, labels, cfg
        self.solver = solver()
        self.nbest, self.constraints = _decoding_options(self.inference, cfg, labels, nbest)
        self.method = self.inference + ("_oracle" if self.inference == "gd" and cfg.gd_oracle else "")
        self.report = start_report(self.method)
        self.generator = None
        # fairseq-generate strips these symbols when printing: padding and EOS never occur
        self.symbols_to_strip_from_output = {labels.dict.pad(), labels.dict.eos()}

    def _random(self, device):
        if self.generator is None:
            self.generator = torch.Generator(device=device).manual_seed(self.cfg.seed)
        return self.generator

    def _problem(self, net_input, mask, correct=None, sentence=None) -> Problem:
        """``net_input`` (a batch or one sentence) with its (B, T) mask, for a solver."""
        return Problem(
            energy=self.energy, condition=lambda: self.energy.condition(net_input), mask=mask,
            num_choices=self.energy.num_labels, cfg=self.cfg,
            infnet=self.model if self.solver.uses_infnet else None,
            infnet_logits=lambda model: model(**net_input), generator=self._random(mask.device),
            correct=correct, constraints=self.constraints, sentence=sentence)

    def _batch_problem(self, sample, mask) -> Problem:
        """The batch; tailoring adapts one copy per sentence, the oracle reads the gold."""
        net_input = sample["net_input"]

        def sentence(i):
            one = _one(net_input, i)
            return self._problem(one, self.model.padding_mask(one["src_tokens"]))

        def correct(labels):
            gold = self.labels.to_labels(sample["target"]).masked_fill(~mask, 0)
            return self.labels.correct(labels, gold, mask).sum(1)

        has_gold = sample.get("target") is not None
        return self._problem(net_input, mask, correct if has_gold else None, sentence)

    @torch.no_grad()
    def generate(self, models, sample, **unused):
        """Returns one list per sentence holding ``nbest`` hypothesis dicts (fairseq's
        format), best first: ``tokens`` (n,) label dictionary ids, ``score`` = −energy,
        ``positional_scores`` (n,) emission scores of the chosen labels, or their log
        marginal probabilities with ``marginal_scores``."""
        net_input = sample["net_input"]
        mask = net_input["src_tokens"].ne(self.labels.dict.pad())
        problem = self._batch_problem(sample, mask)
        with self.report.timed():
            try:
                labels, logits = self.solver.solve(problem)
            except DivergedError as error:
                raise error.named(sample["id"].tolist()) from None
            if labels is None:
                labels = logits.argmax(-1)
            ranked = None
            if self.nbest > 1:  # viterbi only: the best of the k-best is the labelling
                ranked = self.energy.kbest(problem.context, mask, self.nbest, self.constraints)
                labels = ranked[0][:, 0]
        context = problem.context  # outside the timing for methods that do not need it
        labels = labels.masked_fill(~mask, 0)
        discrete = self.energy.discrete_energy(context, labels, mask)
        relaxed = None
        if logits is not None:
            relaxed = self.energy.relaxed_energy(context, logits, mask, "sx", "sx")
        _, minimum = self.energy.exact_minimum(context, mask)
        self.report.add(discrete, relaxed, minimum)
        if ranked is None:
            ranked = labels.unsqueeze(1), discrete.unsqueeze(1)
        return self._hypotheses(context, mask, net_input["src_lengths"], *ranked)

    def _hypotheses(self, context, mask, lengths, labels, energies):
        """fairseq hypotheses from labels (B, K, T) and energies (B, K); ranks of infinite
        energy (no such labelling) are left out."""
        scores = self._positional_scores(context, mask, labels)
        tags = self.labels.to_tags(labels)
        found = torch.isfinite(energies).tolist()
        return [[{
            "tokens": tags[i, r, :n],
            "score": -energies[i, r],
            "positional_scores": scores[i, r, :n],
            "alignment": None,
        } for r in range(labels.shape[1]) if found[i][r]] for i, n in enumerate(lengths.tolist())]

    def _positional_scores(self, context, mask, labels):
        """(B, K, T) emission scores, or log marginals, of labels (B, K, T)."""
        if self.cfg.marginal_scores:
            per_label = self.energy.marginals(context, mask, self.constraints).log()
        else:
            per_label = context.emissions
        B, K, T = labels.shape
        per_label = per_label.unsqueeze(1).expand(B, K, T, per_label.shape[2])
        return per_label.gather(3, labels.unsqueeze(3)).squeeze(3)


def _decoding_options(inference: str, cfg, labels, nbest: int):
    """Validated ``(nbest, constraints or None)`` for ``--nbest`` and ``--constrain-labels``."""
    if nbest < 1:
        raise ValueError(f"--nbest must be at least 1, got {nbest}")
    if nbest > 1 and inference != "viterbi":
        raise ValueError(
            f"--nbest {nbest} needs --inference viterbi (k-best Viterbi); --inference "
            f"{inference} finds one labelling per sentence: use --nbest 1")
    if not cfg.constrain_labels:
        return nbest, None
    if inference != "viterbi":
        raise ValueError(f"--constrain-labels applies to --inference viterbi (exact decoding), "
                         f"not to --inference {inference}")
    scheme = detect_scheme(labels.names)
    if scheme == "none":
        logger.warning("--constrain-labels: the labels are neither BIO nor BIOES; every "
                       "label path stays allowed")
    return nbest, label_constraints(labels.names)


def _one(net_input, i):
    """The i-th sentence of a right-padded batch, without padding."""
    n = int(net_input["src_lengths"][i])
    return {"src_tokens": net_input["src_tokens"][i : i + 1, :n],
            "src_lengths": net_input["src_lengths"][i : i + 1]}
