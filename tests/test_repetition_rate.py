"""scripts/repetition_rate.py on hand-made fairseq-generate outputs."""

import pytest

from scripts.repetition_rate import hypotheses, main, repetition_rate

OUTPUT = """S-0\tein hund läuft .
T-0\ta dog runs .
H-0\t-0.5\ta dog dog runs runs .
D-0\t-0.5\ta dog dog runs runs .
P-0\t-0.1 -0.2 -0.3 -0.4 -0.5 -0.6 -0.7
S-1\tzwei katzen .
H-1\t-0.2\ttwo cats .
"""


def test_counts_words_equal_to_their_predecessor(tmp_path, capsys):
    path = tmp_path / "gen.txt"
    path.write_text(OUTPUT)
    hyps = hypotheses(str(path))
    assert hyps == [["a", "dog", "dog", "runs", "runs", "."], ["two", "cats", "."]]
    length, rate = repetition_rate(hyps)
    assert length == pytest.approx(4.5) and rate == pytest.approx(100 * 2 / 9)
    main([str(path)])
    assert capsys.readouterr().out.splitlines()[1] == f"{path}\t2\t4.50\t22.22"


def test_rejects_files_without_hypotheses(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("S-0\tein hund .\n")
    with pytest.raises(ValueError, match="no H- lines"):
        hypotheses(str(path))
    path.write_text("H-0\tjust text\n")
    with pytest.raises(ValueError, match="malformed"):
        hypotheses(str(path))
