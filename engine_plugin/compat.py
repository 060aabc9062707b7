"""Fixes for running stock fairseq on torch >= 2.6, applied when the plugin is imported.

Checkpoints
-----------
torch 2.6 changed ``torch.load`` to ``weights_only=True`` by default, which rejects stock
fairseq checkpoints (they hold ``argparse.Namespace`` objects and numpy values).
``fairseq.checkpoint_utils`` (and only it) gets a ``torch`` whose ``load`` keeps
``weights_only=True`` and allows exactly those globals (``engine_plugin/safe_load.py``);
anything else is refused with an error naming the file, unless the user opts into full
unpickling with ``ENGINE_PLUGIN_UNSAFE_LOAD=1``. Its copies of ``checkpoint_last.pt`` to
``checkpoint_best.pt`` become atomic, and an unreadable ``checkpoint_last.pt`` makes the
automatic resume fall back to the newest readable checkpoint
(``engine_plugin/checkpoint_files.py``). A ``ValueError`` raised while a model is built from a
checkpoint names the file (``engine_plugin/checkpoints.py``).

numpy 2
-------
fairseq's ``TokenBlockDataset`` (``--sample-break-mode eos`` of ``language_modeling``) and
``LanguagePairDataset`` use ``np.compat.long``, which numpy 2 removed. Those two modules get
a ``numpy`` that still has it (``int``, what it was).

Model options added after a checkpoint was saved
-------------------------------------------------
fairseq fills a config-driven model's missing options with its dataclass defaults only when
``--arch`` is the model's own name; under another architecture (``blstm_crf_plus``) a
checkpoint saved before an option existed fails with ``Missing key``.
``fill_model_defaults`` fills them for the tasks of this plugin.

Batching
--------
fairseq's main branch (the Python 3.11 builds) drops the last batch whenever its size is not a
multiple of ``--required-batch-size-multiple`` (default 8), so ``fairseq-generate`` and
validation silently skip up to 7 sentences of every split. We give the dropped sentences back
as a final, smaller batch, as fairseq 0.12.2 did.

Distributed training
--------------------
``torchrun --nproc-per-node N $(which fairseq-train) ...`` trains one job of N ranks on CPUs
(gloo) as on GPUs; fairseq alone runs N separate single-rank jobs on CPUs
(``engine_plugin/distributed.py``).

Score lines
-----------
The stock ``bleu`` and ``sacrebleu`` scorers' line ends with the mean teacher energies and
the speed of a solver (``--inference gd|warmstart|tailored``) and the share of special
symbols a NAT decoder wrote (``engine_plugin/translation_generator.py``), which the
generator strips from the printed outputs.

Fine-tuning clock
-----------------
``--stop-time-hours`` compares against the trainer's cumulative training time, which
``Trainer.load_checkpoint`` restores from the checkpoint even when the meters are reset, as
they are for ``--finetune-from-model``: a model fine-tuned from a checkpoint that trained for
an hour stops at once under ``--stop-time-hours 1``. A load that resets the meters now also
restarts that clock (it is the ``wall`` meter of the logs).

fairseq versions
----------------
Each fix first checks that what it replaces is there as fairseq 0.12.3 (``ve-fairseq``, the
main branch) has it: the function with the parameters the wrapper passes on, the module
global that an override stands in for, used by the function that should see the override.
Otherwise importing the plugin raises :class:`FairseqVersionError`, naming the function, the
installed fairseq version and the fix, instead of patching something else silently.
"""

import functools
import importlib
import inspect
import time
import types
from typing import Callable, Sequence

import fairseq
import numpy as np
from fairseq import checkpoint_utils
from fairseq.data import data_utils
from fairseq.trainer import Trainer
from torch.nn.parallel import DistributedDataParallel

from engine_plugin.checkpoint_files import atomic_copy, resume_from_readable
from engine_plugin.checkpoints import model_class_of, naming_checkpoint_in_errors
from engine_plugin.distributed import DeviceAwareDDP, launch_from_torchrun
from engine_plugin.report import current_report, extend_score_line
from engine_plugin.safe_load import safe_torch_load


class _ModuleWithOverrides(types.ModuleType):
    """A stand-in for ``module`` in one fairseq module's globals: every attribute is the
    original's, except the overrides."""

    def __init__(self, module, **overrides):
        super().__init__(module.__name__)
        self._module = module
        self.__dict__.update(overrides)

    def __getattr__(self, name):
        return getattr(self._module, name)


class FairseqVersionError(RuntimeError):
    """The installed fairseq lacks a function, or a use of a global, that a fix of
    ``engine_plugin/compat.py`` replaces."""


def _incompatible(patched: str, found: str) -> FairseqVersionError:
    return FairseqVersionError(
        f"engine_plugin/compat.py fixes {patched}, but in the installed fairseq "
        f"{fairseq.__version__} {found}. The plugin is written for fairseq 0.12.3 "
        "(ve-fairseq==0.12.3, or fairseq-fixed==0.12.3.1): install it with "
        "`pip install --no-deps ve-fairseq==0.12.3` (what scripts/install.sh does), or "
        "adapt engine_plugin/compat.py to this fairseq."
    )


def _qualified_name(owner, name: str) -> str:
    if isinstance(owner, types.ModuleType):
        return f"{owner.__name__}.{name}"
    return f"{owner.__module__}.{owner.__qualname__}.{name}"


def _require_function(owner, name: str, parameters: Sequence[str]) -> Callable:
    """``owner.name``, after checking that it exists and that its parameters start with
    ``parameters`` (the ones the replacement relies on)."""
    patched = f"{_qualified_name(owner, name)}({', '.join(parameters)}, ...)"
    function = getattr(owner, name, None)
    if not callable(function):
        raise _incompatible(patched, "it does not exist")
    found = tuple(inspect.signature(function).parameters)
    if found[:len(parameters)] != tuple(parameters):
        raise _incompatible(patched, f"its parameters are ({', '.join(found)})")
    return function


def _require_use(function: Callable, *names: str) -> None:
    """Checks that the code of ``function`` refers to each of ``names`` (globals and
    attributes), which an override of one of its module's globals relies on."""
    missing = [name for name in names if name not in function.__code__.co_names]
    if missing:
        raise _incompatible(
            f"{'.'.join(names)} as {function.__module__}.{function.__qualname__} calls it",
            f"that function does not refer to {', '.join(missing)}")


def _override_global(module_name: str, global_name: str, used_by: Sequence[Callable] = (),
                     **overrides):
    """Replaces the global ``global_name`` of the module ``module_name`` by a stand-in with
    ``overrides``, once; ``used_by`` are the functions expected to use those overrides."""
    module = importlib.import_module(module_name)
    current = getattr(module, global_name, None)
    if isinstance(current, _ModuleWithOverrides):
        return
    if current is None:
        raise _incompatible(f"the global {global_name} of {module_name}", "there is none")
    for function in used_by:
        _require_use(function, global_name, *overrides)
    setattr(module, global_name, _ModuleWithOverrides(current, **overrides))


def patch_fairseq_checkpoint_loading():
    """Makes ``fairseq.checkpoint_utils`` load stock checkpoints safely under torch >= 2.6,
    copy them atomically and resume from a readable one."""
    loader = _require_function(checkpoint_utils, "load_checkpoint_to_cpu", ("path",))
    _override_global(checkpoint_utils.__name__, "torch", used_by=[loader], load=safe_torch_load)
    saver = _require_function(checkpoint_utils, "save_checkpoint", ("cfg", "trainer"))
    _require_function(checkpoint_utils.PathManager, "copy", ("src_path", "dst_path", "overwrite"))
    _override_global(checkpoint_utils.__name__, "PathManager", used_by=[saver], copy=atomic_copy)
    _wrap_once(checkpoint_utils, "load_checkpoint", resume_from_readable, ("cfg", "trainer"))
    _wrap_once(checkpoint_utils, "load_model_ensemble_and_task", naming_checkpoint_in_errors,
               ("filenames", "arg_overrides", "task", "strict", "suffix", "num_shards", "state"))


def patch_numpy_compat():
    """Gives the fairseq datasets that use ``np.compat.long`` a numpy that has it."""
    if not hasattr(np, "compat"):
        for module in ("fairseq.data.token_block_dataset", "fairseq.data.language_pair_dataset"):
            _override_global(module, "np", compat=types.SimpleNamespace(long=int))


def fill_model_defaults(cfg):
    """Adds the dataclass defaults of ``cfg``'s model for options ``cfg`` lacks (in place)."""
    from omegaconf import OmegaConf, open_dict

    _, model = model_class_of(cfg)
    dataclass = getattr(model, "__dataclass", None)
    if dataclass is None or not OmegaConf.is_config(cfg):
        return cfg
    defaults = OmegaConf.structured(dataclass())
    with open_dict(cfg):
        for key in defaults:
            if key not in cfg:
                cfg[key] = defaults[key]
    return cfg


def _wrap_once(owner, name: str, wrap, parameters: Sequence[str]):
    """Replaces ``owner.name`` by ``wrap(owner.name)``, unless this plugin wrapped it already
    (the plugin may be imported more than once, e.g. by ``--user-dir`` and by a script).
    The function must take ``parameters`` first (see :func:`_require_function`)."""
    current = getattr(owner, name, None)
    if not getattr(current, "_engine_plugin_wrapped", False):
        wrapped = wrap(_require_function(owner, name, parameters))
        wrapped._engine_plugin_wrapped = True
        setattr(owner, name, wrapped)


def _keep_last_batch(batch_by_size):
    @functools.wraps(batch_by_size)
    def wrapper(indices, *args, **kwargs):
        batches = batch_by_size(indices, *args, **kwargs)
        if kwargs.get("fixed_shapes") is not None:
            return batches
        n_batched = sum(len(b) for b in batches)
        if n_batched < len(indices):
            batches = list(batches) + [np.asarray(indices[n_batched:], dtype=np.int64)]
        return batches

    return wrapper


def patch_fairseq_batching():
    """Makes ``fairseq.data.data_utils.batch_by_size`` keep every index."""
    _wrap_once(data_utils, "batch_by_size", _keep_last_batch,
               ("indices", "num_tokens_fn", "num_tokens_vec", "max_tokens", "max_sentences",
                "required_batch_size_multiple", "fixed_shapes"))


def patch_fairseq_distributed():
    """Makes ``torchrun`` start one fairseq job of ``WORLD_SIZE`` ranks on CPUs as on GPUs
    (``engine_plugin/distributed.py``)."""
    from fairseq.distributed import utils as distributed_utils
    from fairseq.models import distributed_fairseq_model

    _wrap_once(distributed_utils, "call_main", launch_from_torchrun, ("cfg", "main"))
    current = getattr(distributed_fairseq_model, "DistributedDataParallel", None)
    if not (isinstance(current, type) and issubclass(current, DistributedDataParallel)):
        raise _incompatible(f"{distributed_fairseq_model.__name__}.DistributedDataParallel",
                            f"it is {current!r}, not torch's DistributedDataParallel")
    distributed_fairseq_model.DistributedDataParallel = DeviceAwareDDP


def _with_symbol_shares(result_string):
    @functools.wraps(result_string)
    def wrapper(self, *args, **kwargs):
        report = current_report()
        line = extend_score_line(result_string(self, *args, **kwargs), report.summary())
        return extend_score_line(line, report.symbol_summary())

    return wrapper


def patch_fairseq_translation_scorers():
    """Appends the teacher energies and speed of a solver (``--inference gd|warmstart|
    tailored``) and the special-symbol shares of the NAT decode (``engine_plugin/report.py``)
    to the score line of stock ``--scoring bleu`` and ``sacrebleu``."""
    from fairseq.scoring import bleu

    for scorer in (bleu.Scorer, bleu.SacrebleuScorer):
        _wrap_once(scorer, "result_string", _with_symbol_shares, ("self",))


def _restart_clock_on_reset(load_checkpoint):
    @functools.wraps(load_checkpoint)
    def wrapper(self, filename, reset_optimizer=False, reset_lr_scheduler=False,
                optimizer_overrides=None, reset_meters=False, **kwargs):
        extra_state = load_checkpoint(self, filename, reset_optimizer, reset_lr_scheduler,
                                      optimizer_overrides, reset_meters=reset_meters, **kwargs)
        if reset_meters:
            self._previous_training_time = 0
            self._start_time = time.time()
        return extra_state

    return wrapper


def patch_fairseq_finetune_clock():
    """Makes ``Trainer.load_checkpoint(..., reset_meters=True)`` restart the training clock."""
    clock = _require_function(Trainer, "_local_cumulative_training_time", ("self",))
    _require_use(clock, "_start_time", "_previous_training_time")
    _wrap_once(Trainer, "load_checkpoint", _restart_clock_on_reset,
               ("self", "filename", "reset_optimizer", "reset_lr_scheduler",
                "optimizer_overrides", "reset_meters"))
