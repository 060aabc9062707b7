"""``crf_nll``: conditional negative log-likelihood ``E(x, y) + log Z(x)`` of a CRF energy."""

import math

import torch
from fairseq import metrics
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import FairseqDataclass

from engine_plugin.data.labels import LabelSpace


@register_criterion("crf_nll", dataclass=FairseqDataclass)
class CRFNLLCriterion(FairseqCriterion):
    """Sums the NLL over sentences; in evaluation it also decodes with Viterbi and reports
    token accuracy (``acc``), usable with ``--best-checkpoint-metric acc
    --maximize-best-checkpoint-metric``."""

    def __init__(self, task):
        super().__init__(task)
        self.labels = LabelSpace(task.target_dictionary)

    def forward(self, model, sample, reduce=True):
        net_input = sample["net_input"]
        emissions = model(**net_input)
        mask = model.padding_mask(net_input["src_tokens"])
        gold = self.labels.to_labels(sample["target"]).masked_fill(~mask, 0)
        loss = model.crf.nll(emissions, gold, mask, reduction="sum")
        log = {
            "loss": loss.data,
            "ntokens": sample["ntokens"],
            "nsentences": sample["nsentences"],
            "sample_size": sample["nsentences"],
        }
        if not model.training:
            with torch.no_grad():
                pred, _ = model.crf.viterbi(emissions, mask)
            log["n_correct"] = int(self.labels.correct(pred, gold, mask).sum())
        return loss, sample["nsentences"], log

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        loss = sum(log.get("loss", 0) for log in logging_outputs)
        sentences = sum(log.get("sample_size", 0) for log in logging_outputs)
        tokens = sum(log.get("ntokens", 0) for log in logging_outputs)
        metrics.log_scalar("loss", loss / max(sentences, 1), sentences, round=3)
        if any("n_correct" in log for log in logging_outputs):
            correct = sum(log.get("n_correct", 0) for log in logging_outputs)
            metrics.log_scalar("acc", 100.0 * correct / max(tokens, 1), tokens, round=2)
        metrics.log_scalar("loss_per_token", loss / max(tokens, 1) / math.log(2), tokens, round=3)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True
