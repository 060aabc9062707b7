"""The generator that ``fairseq-generate --task sequence_labeling`` uses."""

import torch

from engine_plugin.report import start_report

INFERENCE_METHODS = ("viterbi",)


class TaggingGenerator:
    """Labels a batch with the chosen inference method and returns fairseq hypotheses.

    Args:
        model: a tagging energy model (``blstm_crf``): ``model(**net_input)`` gives emissions
            (B, T, L) and ``model.crf`` the CRF.
        labels: the task's ``LabelSpace``.
        method: one of ``INFERENCE_METHODS``.
    """

    def __init__(self, model, labels, method="viterbi"):
        if method not in INFERENCE_METHODS:
            raise ValueError(f"unknown inference {method!r}; choose from {INFERENCE_METHODS}")
        self.model, self.labels, self.method = model, labels, method
        self.report = start_report(method)
        # fairseq-generate strips these symbols when printing: padding and EOS never occur
        self.symbols_to_strip_from_output = {labels.dict.pad(), labels.dict.eos()}

    @torch.no_grad()
    def generate(self, models, sample, **unused):
        """Returns one list per sentence holding one hypothesis dict (fairseq's format):
        ``tokens`` (n,) label dictionary ids, ``score`` = −energy, ``positional_scores``
        (n,) emission scores of the chosen labels."""
        net_input = sample["net_input"]
        with self.report.timed():
            emissions = self.model(**net_input)
            mask = self.model.padding_mask(net_input["src_tokens"])
            labels, energies = self.model.crf.viterbi(emissions, mask)
        self.report.add_energies(energies)
        unary = emissions.gather(2, labels.unsqueeze(2)).squeeze(2)
        tags = self.labels.to_tags(labels)
        hypos = []
        for i, n in enumerate(net_input["src_lengths"].tolist()):
            hypos.append([{
                "tokens": tags[i, :n],
                "score": -energies[i],
                "positional_scores": unary[i, :n],
                "alignment": None,
            }])
        return hypos
