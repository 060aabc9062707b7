"""Per-sentence perplexities from the log of stock ``fairseq-eval-lm --output-word-probs``.

    fairseq-eval-lm LM_BIN --task language_modeling --sample-break-mode complete \\
        --tokens-per-sample 1 --max-target-positions 100000 --path LM.pt --gen-subset test \\
        --output-word-probs --user-dir engine_plugin --cpu > eval_lm.log 2>&1
    python scripts/eval_lm_sentence_ppl.py eval_lm.log --text RAW/test.words > ppl.tsv

With ``--output-word-probs`` eval-lm logs one line per sample (one sentence, see below):

    ... fairseq_cli.eval_lm | 12 the [-3.156661]<TAB>dog [-3.642455]<TAB></s> [-1.606973]

that is the sample id, then ``token [ln p(token | history)]`` for every token including the
closing ``</s>``, in natural log (the final ``Loss (base 2)`` line is in base 2). The logger
prefix differs with how logging was configured (``... | INFO | fairseq_cli.eval_lm | `` or
``INFO:fairseq_cli.eval_lm:``) and the lines may go to stdout or stderr, so give this script
both (``2>&1``). The perplexity of sentence i with n words is

    ppl_i = exp(-(1 / (n + 1)) * sum_{t=1..n+1} ln p(w_t | w_<t)),   w_{n+1} = </s>,

the per-sentence version of the corpus perplexity eval-lm prints. Written as TSV with a header:
``id  tokens  logprob  ppl  text`` (tokens = n + 1; logprob = the sum in nats; text = the
tokens as the LM saw them, without ``</s>``, rare words as ``<unk>``).

One sentence per sample: ``--sample-break-mode eos`` would say so directly, but on numpy 2 it
crashes inside stock fairseq (``np.compat.long`` in ``TokenBlockDataset``). ``complete`` with
``--tokens-per-sample 1`` is equivalent: a block holds complete sentences up to 1 token, and a
sentence longer than the block gets a block of its own, so every sentence is its own sample
(each has at least one word and ``</s>``). ``--max-target-positions`` must exceed the longest
sentence, else eval-lm silently skips it (``ignore_invalid_inputs=True``).

Checks (errors name the file and sentence): every sentence of ``--text`` is scored exactly once
and nothing else is; each sample has the sentence's words (or ``<unk>``) and a final ``</s>``;
every log-probability is finite; the sum agrees with eval-lm's own ``Loss (base 2)`` line.
"""

import argparse
import math
import re
import sys

PREFIX = re.compile(r"fairseq_cli\.eval_lm(?::| \| )(\d+) (.*\])\s*$")
ITEM = re.compile(r"^(.*) \[([^\]\s]+)\]$")
LOSS = re.compile(r"fairseq_cli\.eval_lm(?::| \| )Loss \(base 2\): (\S+), Perplexity")
UNK, EOS = "<unk>", "</s>"


class EvalLmError(ValueError):
    pass


def parse_eval_lm(path):
    """Returns ({id: [(token, ln p)]}, reported base-2 loss or None) from an eval-lm log."""
    sentences, loss = {}, None
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            m = LOSS.search(line)
            if m:
                loss = float(m.group(1).rstrip(","))
                continue
            m = PREFIX.search(line)
            if not m:
                continue
            sid = int(m.group(1))
            items = []
            for item in m.group(2).split("\t"):
                im = ITEM.match(item)
                if not im:
                    raise EvalLmError(f"{path}:{lineno}: cannot read {item!r} as 'token [logprob]'")
                try:
                    score = float(im.group(2))
                except ValueError:
                    raise EvalLmError(f"{path}:{lineno}: log-probability {im.group(2)!r} of "
                                      f"{im.group(1)!r} is not a number") from None
                if not math.isfinite(score):
                    raise EvalLmError(f"{path}:{lineno}: sentence {sid}: log-probability of "
                                      f"{im.group(1)!r} is {score}")
                items.append((im.group(1), score))
            if sid in sentences:
                raise EvalLmError(f"{path}:{lineno}: sentence {sid} is scored twice")
            sentences[sid] = items
    if not sentences:
        raise EvalLmError(f"{path}: no per-sentence lines; run fairseq-eval-lm with "
                          "--output-word-probs and keep both stdout and stderr (2>&1)")
    return sentences, loss


def sentence_table(log_path, text_path=None):
    """Rows (id, tokens, logprob, ppl, text) in id order, checked against ``text_path``."""
    sentences, loss = parse_eval_lm(log_path)
    if text_path is not None:
        with open(text_path, encoding="utf-8") as f:
            lines = [line.split() for line in f]
        expected = set(range(len(lines)))
        missing, extra = sorted(expected - set(sentences)), sorted(set(sentences) - expected)
        if missing or extra:
            raise EvalLmError(
                f"{log_path}: scores {len(sentences)} sentences but {text_path} has "
                f"{len(lines)} (missing ids {missing[:10]}, unexpected ids {extra[:10]}); "
                "use --sample-break-mode complete --tokens-per-sample 1 (one sentence per "
                "sample), a --max-target-positions above the longest sentence, the same split, "
                "and --user-dir engine_plugin (keeps fairseq's last partial batch)")
        for sid, items in sentences.items():
            words = lines[sid]
            tokens = [t for t, _ in items]
            ok = (len(tokens) == len(words) + 1 and tokens[-1] == EOS
                  and all(t == w or t == UNK for t, w in zip(tokens, words)))
            if not ok:
                raise EvalLmError(
                    f"{log_path}: sample {sid} is {' '.join(tokens)!r} but line {sid + 1} of "
                    f"{text_path} is {' '.join(words)!r} (plus </s>); is each sample exactly "
                    "one sentence of this file?")
    rows, total, count = [], 0.0, 0
    for sid in sorted(sentences):
        items = sentences[sid]
        if not items or items[-1][0] != EOS:
            raise EvalLmError(f"{log_path}: sample {sid} does not end with {EOS}: not one "
                              "sentence per sample?")
        logprob = sum(s for _, s in items)
        total, count = total + logprob, count + len(items)
        rows.append((sid, len(items), logprob, math.exp(-logprob / len(items)),
                     " ".join(t for t, _ in items[:-1])))
    if loss is not None:
        ours = -total / count / math.log(2)
        if abs(ours - loss) > 1e-3 + 1e-4 * abs(loss):
            raise EvalLmError(f"{log_path}: per-sentence log-probabilities give a base-2 loss of "
                              f"{ours:.4f} but eval-lm reports {loss:.4f}")
    return rows


def write_tsv(rows, out):
    out.write("id\ttokens\tlogprob\tppl\ttext\n")
    for sid, n, logprob, ppl, text in rows:
        out.write(f"{sid}\t{n}\t{logprob:.6f}\t{ppl:.6f}\t{text}\n")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("log", help="stdout+stderr of fairseq-eval-lm --output-word-probs")
    p.add_argument("--text", help="the raw text file eval-lm scored (one sentence a line); "
                   "checks that sample i is line i+1")
    p.add_argument("--out", help="TSV to write (default stdout)")
    args = p.parse_args(argv)
    try:
        rows = sentence_table(args.log, args.text)
    except EvalLmError as e:
        sys.exit(f"error: {e}")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            write_tsv(rows, f)
    else:
        write_tsv(rows, sys.stdout)
    print(f"{len(rows)} sentences, corpus perplexity "
          f"{math.exp(-sum(r[2] for r in rows) / sum(r[1] for r in rows)):.2f}", file=sys.stderr)


if __name__ == "__main__":
    main()
