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
"""

from typing import List

import torch

from engine_plugin.energies.crf_energy import CRFEnergy
from engine_plugin.report import start_report
from engine_plugin.solvers.checks import DivergedError
from engine_plugin.solvers.gradient_descent import descend, initial_logits
from engine_plugin.solvers.tailoring import tailor

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
        cfg: the task config (``inference``, ``gd_*``, ``tailor_*`` options).
    """

    def __init__(self, model, energy: CRFEnergy, labels, cfg):
        self.inference = str(cfg.inference)
        if self.inference not in INFERENCE_METHODS:
            raise ValueError(f"unknown inference {self.inference!r}; choose from {INFERENCE_METHODS}")
        self.model, self.energy, self.labels, self.cfg = model, energy, labels, cfg
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
            labels, _ = self.energy.exact_minimum(context, mask)
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
        """Returns one list per sentence holding one hypothesis dict (fairseq's format):
        ``tokens`` (n,) label dictionary ids, ``score`` = −energy, ``positional_scores``
        (n,) emission scores of the chosen labels."""
        net_input = sample["net_input"]
        mask = net_input["src_tokens"].ne(self.labels.dict.pad())
        with self.report.timed():
            try:
                labels, logits, context = self._solve(sample, mask)
            except DivergedError as error:
                raise error.named(sample["id"].tolist()) from None
            if labels is None:
                labels = logits.argmax(-1)
        if context is None:
            context = self.energy.condition(net_input)
        labels = labels.masked_fill(~mask, 0)
        discrete = self.energy.discrete_energy(context, labels, mask)
        relaxed = None
        if logits is not None:
            relaxed = self.energy.relaxed_energy(context, logits, mask, "sx", "sx")
        _, minimum = self.energy.exact_minimum(context, mask)
        self.report.add(discrete, relaxed, minimum)
        unary = context.emissions.gather(2, labels.unsqueeze(2)).squeeze(2)
        tags = self.labels.to_tags(labels)
        return [[{
            "tokens": tags[i, :n],
            "score": -discrete[i],
            "positional_scores": unary[i, :n],
            "alignment": None,
        }] for i, n in enumerate(net_input["src_lengths"].tolist())]


def _one(net_input, i):
    """The i-th sentence of a right-padded batch, without padding."""
    n = int(net_input["src_lengths"][i])
    return {"src_tokens": net_input["src_tokens"][i : i + 1, :n],
            "src_lengths": net_input["src_lengths"][i : i + 1]}


def _pad_to(logits, length):
    return torch.nn.functional.pad(logits, (0, 0, 0, length - logits.shape[1]))
