"""``crf_nll``: conditional negative log-likelihood ``E(x, y) + log Z(x)`` of a CRF energy."""

import math

import torch
from fairseq import metrics
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import FairseqDataclass

from engine_plugin.crf import detect_scheme
from engine_plugin.data.labels import LabelSpace
from engine_plugin.scoring.tagging import precision_recall_f1, span_f1_counts

_SPAN_COUNTS = ("f1_correct", "f1_gold", "f1_pred")


@register_criterion("crf_nll", dataclass=FairseqDataclass)
class CRFNLLCriterion(FairseqCriterion):
    """Sums the NLL over sentences; in evaluation it also decodes with Viterbi and reports
    token accuracy (``acc``), and for BIO/BIOES label sets conlleval span F1 (``f1``),
    usable with ``--best-checkpoint-metric acc|f1 --maximize-best-checkpoint-metric``."""

    def __init__(self, task):
        super().__init__(task)
        self.labels = LabelSpace(task.target_dictionary)
        self.chunked = detect_scheme(self.labels.names) != "none"

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
            if self.chunked:
                log.update(zip(_SPAN_COUNTS,
                               self._span_counts(pred, gold, mask)))
        return loss, sample["nsentences"], log

    def _span_counts(self, pred, gold, mask):
        """conlleval (correct, gold, predicted) chunk counts of a batch of (B, T) labels."""
        names, lengths = self.labels.names, mask.sum(1).tolist()
        as_names = [[[names[i] for i in row[:n]] for row, n in zip(x.tolist(), lengths)]
                    for x in (gold, pred)]
        return span_f1_counts(*as_names)

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        loss = sum(log.get("loss", 0) for log in logging_outputs)
        sentences = sum(log.get("sample_size", 0) for log in logging_outputs)
        tokens = sum(log.get("ntokens", 0) for log in logging_outputs)
        metrics.log_scalar("loss", loss / max(sentences, 1), sentences, round=3)
        if any("n_correct" in log for log in logging_outputs):
            correct = sum(log.get("n_correct", 0) for log in logging_outputs)
            metrics.log_scalar("acc", 100.0 * correct / max(tokens, 1), tokens, round=2)
        if any("f1_correct" in log for log in logging_outputs):
            # corpus-level F1: the chunk counts are summed over the whole split
            for key in _SPAN_COUNTS:
                metrics.log_scalar_sum(key, sum(log.get(key, 0) for log in logging_outputs))
            metrics.log_derived("f1", lambda meters: round(precision_recall_f1(
                *(meters[key].sum for key in _SPAN_COUNTS))[2], 2))
        metrics.log_scalar("loss_per_token", loss / max(tokens, 1) / math.log(2), tokens, round=3)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True
