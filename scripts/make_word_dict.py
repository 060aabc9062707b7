"""Writes a fairseq word dictionary: training words with their counts, then the words that
occur only in the other files with count 0.

    python scripts/make_word_dict.py DIR/train.words DIR/valid.words DIR/test.words > DIR/dict.words.txt
    fairseq-preprocess ... --srcdict DIR/dict.words.txt

The character CNN can then spell dev/test words that training never saw, while the models
give such count-0 words the <unk> word embedding (no information from dev/test labels is
used). The first file is the training file.
"""

import sys
from collections import Counter


def count_words(path):
    with open(path, encoding="utf-8") as f:
        return Counter(w for line in f for w in line.split())


def main(paths):
    if not paths:
        sys.exit(__doc__)
    train = count_words(paths[0])
    rows = sorted(train.items(), key=lambda kv: (-kv[1], kv[0]))
    others = set()
    for path in paths[1:]:
        others.update(count_words(path))
    rows += [(w, 0) for w in sorted(others - set(train))]
    for word, count in rows:
        sys.stdout.write(f"{word} {count}\n")


if __name__ == "__main__":
    main(sys.argv[1:])
