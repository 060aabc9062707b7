"""Runs the stock fairseq command-line tools in a subprocess, as a user would."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


EXIT_ABORT = "terminate called without an active exception"


def completed(tool: str, returncode: int, output: str) -> bool:
    """True if the run succeeded, or is a ``fairseq-train`` that logged ``done training`` (all
    its checkpoints written) and then aborted while the interpreter shut down: a rare
    (about 1 in 20 under load) C++ thread-teardown abort seen at exit, after the work."""
    if returncode == 0:
        return True
    return (tool == "train" and returncode == -6 and EXIT_ABORT in output
            and "done training in" in output)


def run(tool, *args, check=True, cwd=ROOT):
    """Runs ``fairseq-<tool>`` (preprocess, train, generate, ...) and returns the process.

    With ``check`` a non-zero exit raises an AssertionError that shows the output.
    """
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    env.setdefault("OMP_NUM_THREADS", "1")  # tiny models: threads only contend for the cores
    cmd = [sys.executable, "-m", f"fairseq_cli.{tool}", *map(str, args)]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and not completed(tool, proc.returncode, proc.stdout + proc.stderr):
        raise AssertionError(
            f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        )
    return proc


def preprocess_tagging(raw, dest, *extra):
    """Binarises RAW/{train,valid,test}.{words,tags} into DEST with fairseq-preprocess."""
    return run("preprocess", "--source-lang", "words", "--target-lang", "tags",
               "--trainpref", f"{raw}/train", "--validpref", f"{raw}/valid",
               "--testpref", f"{raw}/test", "--destdir", dest, "--workers", "1", *extra)
