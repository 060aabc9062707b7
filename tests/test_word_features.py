"""Which embedding each dictionary entry uses: count-0 words, lowercasing, word dropout."""

import torch
from fairseq.data import Dictionary

from engine_plugin.modules.word_features import WordFeatures


def _dictionary():
    d = Dictionary()
    for word, count in [("the", 5), ("The", 2), ("Dog", 3)]:
        d.add_symbol(word, count)
    for word in ["THE", "dog", "Cat"]:  # dev/test words added with count 0
        d.add_symbol(word, 0)
    return d


def _embedded_as(features, d):
    return {w: d.symbols[int(features.embedding_index[d.index(w)])]
            for w in ["the", "The", "Dog", "THE", "dog", "Cat"]}


def test_unseen_words_use_the_unk_embedding():
    d = _dictionary()
    assert _embedded_as(WordFeatures(d, 4), d) == {
        "the": "the", "The": "The", "Dog": "Dog", "THE": "<unk>", "dog": "<unk>", "Cat": "<unk>"}


def test_lowercase_shares_the_embedding_of_a_seen_lowercased_form():
    d = _dictionary()
    assert _embedded_as(WordFeatures(d, 4, lowercase=True), d) == {
        "the": "the", "The": "the", "Dog": "Dog", "THE": "the", "dog": "<unk>", "Cat": "<unk>"}


def test_pretrained_vectors_keep_unseen_words(tmp_path):
    d = _dictionary()
    path = tmp_path / "vectors.txt"
    path.write_text("2 4\nCat 1 2 3 4\ndog 0 0 0 1\n")
    features = WordFeatures(d, 4, embed_path=str(path))
    assert _embedded_as(features, d)["Cat"] == "Cat"
    assert torch.equal(features.embed.weight[d.index("Cat")], torch.tensor([1.0, 2, 3, 4]))


def test_word_dropout_only_in_training():
    d = _dictionary()
    features = WordFeatures(d, 4, word_dropout=1.0)
    tokens = torch.tensor([[d.index("the"), d.index("Dog"), d.pad()]])
    unk = features.embed.weight[d.unk()]
    features.train()
    out = features(tokens)
    assert torch.equal(out[0, 0], unk) and torch.equal(out[0, 1], unk)
    assert torch.equal(out[0, 2], features.embed.weight[d.pad()])
    features.eval()
    assert torch.equal(features(tokens)[0, 0], features.embed.weight[d.index("the")])
