"""Writes a deterministic synthetic tagging corpus that needs no download.

Labels follow a hidden Markov chain with strong first-order structure (a toy grammar of
determiners, adjectives, nouns, verbs, ...), and many words are ambiguous between two
labels, so that a first-order CRF beats a per-word classifier: the label of an ambiguous
word is decided by its neighbours' labels.

    python examples/quickstart/make_corpus.py OUT_DIR [--train 2000 --valid 300 --test 300 --seed 1]

writes OUT_DIR/{train,valid,test}.{words,tags}, one sentence per line.
"""

import argparse
import os
import random

# label -> {next label: weight}; "</s>" ends the sentence
GRAMMAR = {
    "<s>": {"DET": 5, "NOUN": 2, "PRON": 3},
    "DET": {"ADJ": 3, "NOUN": 7},
    "ADJ": {"ADJ": 1, "NOUN": 6},
    "NOUN": {"VERB": 6, "PREP": 2, "CONJ": 1, "</s>": 2},
    "PRON": {"VERB": 1},
    "VERB": {"DET": 4, "PREP": 2, "ADV": 2, "</s>": 2},
    "ADV": {"</s>": 1, "PREP": 1},
    "PREP": {"DET": 3, "NOUN": 1},
    "CONJ": {"DET": 1, "PRON": 1},
}
STEMS = {
    "DET": ["the", "a", "this", "every"],
    "ADJ": ["red", "old", "quick", "small", "light", "round"],
    "NOUN": ["dog", "house", "light", "walk", "book", "run", "fly", "round", "watch", "cat"],
    "PRON": ["she", "he", "they", "it"],
    "VERB": ["sees", "walk", "run", "fly", "book", "watch", "likes", "reads"],
    "ADV": ["slowly", "today", "well", "round"],
    "PREP": ["in", "on", "near", "round"],
    "CONJ": ["and", "but"],
}


def sample_sentence(rng, max_len=25):
    words, tags, state = [], [], "<s>"
    while len(tags) < max_len:
        nxt = rng.choices(list(GRAMMAR[state]), weights=list(GRAMMAR[state].values()))[0]
        if nxt == "</s>":
            break
        tags.append(nxt)
        words.append(rng.choice(STEMS[nxt]))
        state = nxt
    return words, tags


def write_corpus(out_dir, sizes, seed=1):
    """Writes ``{split}.words`` / ``{split}.tags`` for each ``split: n_sentences`` in sizes."""
    rng = random.Random(seed)
    os.makedirs(out_dir, exist_ok=True)
    for split, n in sizes.items():
        with open(os.path.join(out_dir, f"{split}.words"), "w") as fw, \
                open(os.path.join(out_dir, f"{split}.tags"), "w") as ft:
            for _ in range(n):
                words, tags = sample_sentence(rng)
                fw.write(" ".join(words) + "\n")
                ft.write(" ".join(tags) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--valid", type=int, default=300)
    parser.add_argument("--test", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    write_corpus(args.out_dir, {"train": args.train, "valid": args.valid, "test": args.test},
                 args.seed)


if __name__ == "__main__":
    main()
