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
from typing import List

import torch

from engine_plugin.crf import detect_scheme, label_constraints
from engine_plugin.energies.crf_energy import CRFEnergy
from engine_plugin.report import start_report
from engine_plugin.solvers.checks import DivergedError
from engine_plugin.solvers.gradient_descent import descend, initial_logits
from engine_plugin.solvers.tailoring import tailor

logger = logging.getLogger(__name__)

INFERENCE_METHODS = ("viterbi", "gd", "infnet", "tailored", "warmstart")
ENERGY_METHODS = ("viterbi", "gd")  # --path is the energy itself


def parse_grid(text: str, cast) -> List:
    return [cast(float(x)) for x in text.split(",") if x.strip()]


class TaggingGenerator:
    """Labels a batch with the chosen inference method and returns fairseq hypotheses.

    Args:
        model: the ``--path`` model: a CRF energy for viterbi/gd, else an inference network.
        energy: the frozen ``CRFEnergy`` that every method is measured against.
        labels: the task's ``LabelSpace``.
        cfg: the task config (``inference``, ``gd_*``, ``tailor_*``, ``constrain_labels``,
            ``marginal_scores`` options).
        nbest: hypotheses per sentence (``--nbest``); more than 1 needs ``viterbi``.
    """

    def __init__(self, model, energy: CRFEnergy, labels, cfg, nbest: int = 1):
        self.inference = str(cfg.inference)
        if self.inference not in INFERENCE_METHODS:
            raise ValueError(f"unknown inference {self.inference!r}; choose from {INFERENCE_METHODS}")
        self.model, self.energy, self.labels, self.cfg = model, energy, labels, cfg
        self.nbest, self.constraints = _decoding_options(self.inference, cfg, labels, nbest)
        self.relaxation, self.gd_init = str(cfg.gd_relaxation), str(cfg.gd_init)
        self.method = self.inference + ("_oracle" if self.inference == "gd" and cfg.gd_oracle else "")
        self.report = start_report(self.method)
        self.generator = None
        # fairseq-generate strips these symbols when printing: padding and EOS never occur
        self.symbols_to_strip_from_output = {labels.dict.pad(), labels.dict.eos()}

    def _random(self, device):
        if self.generator is None:
            self.generator = torch.Generator(device=device).manual_seed(self.cfg.seed)
        return self.generator

    def _gd(self, context, mask, init):
        cfg = self.cfg
        return descend(self.energy, context, mask, init, cfg.gd_steps, cfg.gd_lr,
                       cfg.gd_momentum, self.relaxation, solver=self.inference)[-1]

    def _tailor_one(self, net_input, i, length):
        """Tailored logits (1, length, L) of sentence ``i`` of the batch."""
        try:
            logits = tailor(self.model, self.energy, _one(net_input, i), self.cfg.tailor_steps,
                            self.cfg.tailor_lr, self.relaxation)
        except DivergedError as error:
            error.rows = [i]
            raise
        return _pad_to(logits, length)

    def _gd_oracle(self, context, mask, gold):
        """Per sentence, the labelling of the best (steps, rate) pair by accuracy, then energy."""
        cfg = self.cfg
        steps = sorted(parse_grid(cfg.gd_oracle_steps, int))
        init = initial_logits(context.emissions.shape, self.gd_init, mask.device,
                              self._random(mask.device))
        best_key, best_labels = None, None
        for lr in parse_grid(cfg.gd_oracle_lrs, float):
            for z in descend(self.energy, context, mask, init, steps[-1], lr, cfg.gd_momentum,
                             self.relaxation, snapshot_steps=steps)[:-1]:
                labels = z.argmax(-1)
                correct = self.labels.correct(labels, gold, mask).sum(1).double()
                energy = self.energy.discrete_energy(context, labels, mask).double()
                key = torch.stack([correct, -energy], 1)
                if best_key is None:
                    best_key, best_labels = key, labels
                    continue
                better = (key[:, 0] > best_key[:, 0]) | (
                    (key[:, 0] == best_key[:, 0]) & (key[:, 1] > best_key[:, 1]))
                best_key = torch.where(better[:, None], key, best_key)
                best_labels = torch.where(better[:, None], labels, best_labels)
        return best_labels

    def _solve(self, sample, mask):
        """Returns (labels (B, T), relaxed logits (B, T, L) or None, energy context)."""
        net_input, cfg = sample["net_input"], self.cfg
        method = self.inference
        if method == "infnet":
            return None, self.model(**net_input), None
        if method == "tailored":
            logits = torch.cat([self._tailor_one(net_input, i, mask.shape[1])
                                for i in range(mask.shape[0])])
            return None, logits, None
        context = self.energy.condition(net_input)
        if method == "viterbi":
            labels, _ = self.energy.exact_minimum(context, mask, self.constraints)
            return labels, None, context
        if method == "warmstart":
            return None, self._gd(context, mask, self.model(**net_input)), context
        if cfg.gd_oracle:
            gold = self.labels.to_labels(sample["target"]).masked_fill(~mask, 0)
            return self._gd_oracle(context, mask, gold), None, context
        init = initial_logits(context.emissions.shape, self.gd_init, mask.device,
                              self._random(mask.device))
        return None, self._gd(context, mask, init), context

    @torch.no_grad()
    def generate(self, models, sample, **unused):
        """Returns one list per sentence holding ``nbest`` hypothesis dicts (fairseq's
        format), best first: ``tokens`` (n,) label dictionary ids, ``score`` = −energy,
        ``positional_scores`` (n,) emission scores of the chosen labels, or their log
        marginal probabilities with ``marginal_scores``."""
        net_input = sample["net_input"]
        mask = net_input["src_tokens"].ne(self.labels.dict.pad())
        with self.report.timed():
            try:
                labels, logits, context = self._solve(sample, mask)
            except DivergedError as error:
                raise error.named(sample["id"].tolist()) from None
            if labels is None:
                labels = logits.argmax(-1)
            ranked = None
            if self.nbest > 1:  # viterbi only: the best of the k-best is the labelling
                ranked = self.energy.kbest(context, mask, self.nbest, self.constraints)
                labels = ranked[0][:, 0]
        if context is None:
            context = self.energy.condition(net_input)
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


def _pad_to(logits, length):
    return torch.nn.functional.pad(logits, (0, 0, 0, length - logits.shape[1]))
