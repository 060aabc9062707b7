"""Runs the stock fairseq command-line tools as a user would: the same entry points and
arguments, in this process by default (the test suite pays fairseq's import once instead of
about 4 s per command), or each in a fresh interpreter with ``ENGINE_TESTS_SUBPROCESS=1``.

In-process runs give what the subprocess gives: fairseq's log lines and everything printed
on standard output go to ``stdout``, warnings and tracebacks to ``stderr``, ``SystemExit``
codes become the return code, and an uncaught exception exits 1 with its traceback. The
state fairseq keeps between calls in one process (the best checkpoint score, the early-stop
counter) and the random generators are reset around each run, so runs do not see each other.
"""

import contextlib
import importlib
import io
import logging
import os
import random
import subprocess
import sys
import traceback

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUBPROCESS_ENV = "ENGINE_TESTS_SUBPROCESS"
LOG_FORMAT = "%(asctime)s | %(levelname)s | %(name)s | %(message)s"

EXIT_ABORT = "terminate called without an active exception"


def completed(tool: str, returncode: int, output: str) -> bool:
    """True if the run succeeded, or is a ``fairseq-train`` subprocess that logged ``done
    training`` (all its checkpoints written) and then aborted while the interpreter shut
    down: a rare (about 1 in 20 under load) C++ thread-teardown abort seen at exit."""
    if returncode == 0:
        return True
    return (tool == "train" and returncode == -6 and EXIT_ABORT in output
            and "done training in" in output)


def run(tool, *args, check=True, cwd=ROOT):
    """Runs ``fairseq-<tool>`` (preprocess, train, generate, ...) and returns a
    ``subprocess.CompletedProcess`` (``returncode``, ``stdout``, ``stderr``).

    With ``check`` a non-zero exit raises an AssertionError that shows the output.
    """
    args = [str(a) for a in args]
    if os.environ.get(SUBPROCESS_ENV):
        proc = _in_subprocess(tool, args, cwd)
    else:
        proc = _in_process(tool, args, cwd)
    if check and not completed(tool, proc.returncode, proc.stdout + proc.stderr):
        raise AssertionError(f"fairseq-{tool} {' '.join(args)} exited {proc.returncode}\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def _in_subprocess(tool, args, cwd):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    env.setdefault("OMP_NUM_THREADS", "1")  # tiny models: threads only contend for the cores
    cmd = [sys.executable, "-m", f"fairseq_cli.{tool}", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)


# tools that load data with torch DataLoader workers: in this process a finished run's
# workers would be joined when the loader is collected (seconds each), so they load in the
# main process instead unless the command chooses
LOADER_TOOLS = ("train", "generate", "validate", "interactive", "eval_lm")


# where a fresh interpreter's fairseq logs go: stdout (the tools' own logging.basicConfig),
# except for generate, whose imports (hydra's) set up a root handler on stderr first
LOG_TO_STDERR = ("generate",)


def _in_process(tool, args, cwd):
    """``fairseq_cli.<tool>.cli_main()`` with ``sys.argv`` = the command, in ``cwd``."""
    module = importlib.import_module(f"fairseq_cli.{tool}")
    if tool in LOADER_TOOLS and "--num-workers" not in args:
        args = [*args, "--num-workers", "0"]
    out, err = io.StringIO(), io.StringIO()
    with _isolated(f"fairseq-{tool}", args, cwd, err if tool in LOG_TO_STDERR else out):
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            returncode = _exit_code(module.cli_main, err)
    return subprocess.CompletedProcess([f"fairseq-{tool}", *args], returncode,
                                       out.getvalue(), err.getvalue())


def _exit_code(main, err) -> int:
    """Calls ``main()``; returns the exit status a Python interpreter would give it."""
    try:
        main()
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            return stop.code or 0
        print(stop.code, file=err)
        return 1
    except Exception:  # noqa: BLE001  (the interpreter's behaviour: traceback, status 1)
        traceback.print_exc(file=err)
        return 1
    return 0


@contextlib.contextmanager
def _isolated(program, args, cwd, log_stream):
    """The process state of a fresh fairseq command: argv, working directory, log handler on
    ``log_stream``, random generators and fairseq's between-call memory; restored after."""
    saved_argv, saved_cwd = sys.argv, os.getcwd()
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    rng = torch.get_rng_state(), np.random.get_state(), random.getstate()
    handler = logging.StreamHandler(log_stream)
    handler.setFormatter(logging.Formatter(LOG_FORMAT, "%Y-%m-%d %H:%M:%S"))
    root.handlers, sys.argv = [handler], [program, *args]
    root.setLevel(logging.INFO)
    _forget_fairseq_memory()
    os.chdir(cwd)
    try:
        yield
    finally:
        _close_tensorboard_writers()
        os.chdir(saved_cwd)
        sys.argv, root.handlers = saved_argv, saved_handlers
        root.setLevel(saved_level)
        torch.set_rng_state(rng[0])
        np.random.set_state(rng[1])
        random.setstate(rng[2])


def _forget_fairseq_memory():
    """fairseq keeps the best validation score and the early-stop counter of a training as
    attributes of two functions; a new command must not inherit an earlier one's."""
    from fairseq import checkpoint_utils
    from fairseq_cli import train

    for function, names in ((checkpoint_utils.save_checkpoint, ("best",)),
                            (train.should_stop_early, ("best", "num_runs"))):
        for name in names:
            if hasattr(function, name):
                delattr(function, name)


def _close_tensorboard_writers():
    """fairseq opens one tensorboard writer per split and process, closed at exit; a new
    command must write its own ``--tensorboard-logdir``, and this one's events be flushed."""
    from fairseq.logging import progress_bar

    writers = getattr(progress_bar, "_tensorboard_writers", {})  # absent without tensorboard
    for writer in writers.values():
        writer.close()
    writers.clear()


def preprocess_tagging(raw, dest, *extra):
    """Binarises RAW/{train,valid,test}.{words,tags} into DEST with fairseq-preprocess."""
    return run("preprocess", "--source-lang", "words", "--target-lang", "tags",
               "--trainpref", f"{raw}/train", "--validpref", f"{raw}/valid",
               "--testpref", f"{raw}/test", "--destdir", dest, "--workers", "1", *extra)
