"""Python use of trained taggers in fairseq's hub style.

    from engine_plugin.models.blstm_crf import BLSTMCRFModel
    tagger = BLSTMCRFModel.from_pretrained("CRF", checkpoint_file="checkpoint_best.pt",
                                           data_name_or_path="BIN")
    tagger.tag("she reads a book")         # ['PRON', 'VERB', 'DET', 'NOUN']
    tagger.predict(["she reads a book"])   # labels, energy and CRF marginals per sentence

Inference networks load the same way with the energy they are measured against
(``TaggerInfnet.from_pretrained(..., energy_path="CRF/checkpoint_best.pt")``); any option of
``fairseq-generate --task sequence_labeling`` is a keyword (``inference="gd", gd_steps=20``).
"""

from typing import Dict, List, Union

import torch
from fairseq import hub_utils

Sentences = Union[str, List[str]]


def from_pretrained(model_cls, model_name_or_path, checkpoint_file="model.pt",
                    data_name_or_path=".", **kwargs) -> "TaggerHubInterface":
    """fairseq's ``from_pretrained`` (model directory, checkpoint, data directory, option
    overrides), returning a :class:`TaggerHubInterface`."""
    loaded = hub_utils.from_pretrained(model_name_or_path, checkpoint_file, data_name_or_path,
                                       archive_map=model_cls.hub_models(), **kwargs)
    return TaggerHubInterface(loaded["args"], loaded["task"], loaded["models"])


class TaggerHubInterface(hub_utils.GeneratorHubInterface):
    """fairseq's generator hub for the ``sequence_labeling`` task: a sentence is a string of
    whitespace-separated words (or split by the checkpoint's ``--tokenizer``), its output
    one label per word. ``generate`` returns the tagging generator's hypotheses."""

    def __init__(self, cfg, task, models):
        super().__init__(cfg, task, models)
        self._energy = None  # an infnet's CRF energy, loaded when marginals are asked for

    def encode(self, sentence: str) -> torch.LongTensor:
        """Word ids (n,), no EOS; ``ValueError`` for an empty or over-long sentence."""
        return self.task.encode_sentence(self.tokenize(sentence))

    def decode(self, tokens: torch.LongTensor) -> str:
        """Labels as one space-separated string (not detokenised)."""
        return self.string(tokens)

    def tag(self, sentences: Sentences, **kwargs) -> Union[List[str], List[List[str]]]:
        """The labels of one sentence (a list of strings), or of each of a list of them."""
        if isinstance(sentences, str):
            return self.tag([sentences], **kwargs)[0]
        return [p["labels"] for p in self.predict(sentences, **kwargs)]

    def predict(self, sentences: Sentences, **kwargs) -> Union[Dict, List[Dict]]:
        """For each sentence a dict: ``labels`` (list of n strings), ``energy`` (float, the
        frozen CRF energy of the labels; lower is better) and, when the CRF computes them,
        ``marginals`` (n, L) label probabilities (columns in ``self.task.labels`` order)
        and ``confidence`` (n,) the marginal probability of each chosen label; else None.
        ``kwargs`` go to ``generate`` (e.g. ``nbest``)."""
        if isinstance(sentences, str):
            return self.predict([sentences], **kwargs)[0]
        tokens = [self.encode(sentence) for sentence in sentences]
        hypos = self.generate(tokens, beam=1, **kwargs)
        return [self._prediction(words, best[0]) for words, best in zip(tokens, hypos)]

    def _prediction(self, words: torch.Tensor, hypo: Dict) -> Dict:
        labels = hypo["tokens"]
        marginals = self.marginals(words)
        confidence = None
        if marginals is not None:
            chosen = self.task.labels.to_labels(labels.unsqueeze(0))[0].to(marginals.device)
            confidence = marginals.gather(1, chosen.unsqueeze(1)).squeeze(1)
        return {"labels": [self.tgt_dict[i] for i in labels.tolist()],
                "energy": -float(hypo["score"]), "marginals": marginals,
                "confidence": confidence}

    @torch.no_grad()
    def marginals(self, words: torch.Tensor):
        """(n, L) CRF marginals of one sentence's word ids (n,) under the energy that
        decodes it (``model.crf.marginals``), or None where the CRF has no marginals."""
        energy_model = self._energy_model()
        if not hasattr(energy_model.crf, "marginals"):
            return None
        net_input = {"src_tokens": words.unsqueeze(0).to(self.device),
                     "src_lengths": torch.tensor([len(words)], device=self.device)}
        emissions = energy_model(**net_input)
        mask = torch.ones_like(net_input["src_tokens"], dtype=torch.bool)
        return energy_model.crf.marginals(emissions, mask)[0]

    def _energy_model(self):
        """The CRF model: the loaded model itself, or the ``--energy-path`` of an infnet."""
        model = self.models[0]
        if hasattr(model, "crf"):
            return model
        if self._energy is None:
            self._energy = self.task.energy_for(self.task.cfg.energy_path).to(self.device)
        return self._energy.model
