"""engine_plugin: energy-based inference for structured prediction, as a fairseq plugin.

``--user-dir engine_plugin`` imports this package, which registers the tasks, models,
criteria and scorers and makes stock checkpoints load under torch >= 2.6.
"""

from engine_plugin.compat import (
    patch_fairseq_batching,
    patch_fairseq_checkpoint_loading,
    patch_fairseq_distributed,
    patch_fairseq_finetune_clock,
    patch_fairseq_translation_scorers,
    patch_numpy_compat,
)

patch_fairseq_checkpoint_loading()
patch_fairseq_batching()
patch_numpy_compat()
patch_fairseq_finetune_clock()
patch_fairseq_distributed()
patch_fairseq_translation_scorers()

from engine_plugin import criterions, models, scoring, tasks  # noqa: E402,F401
from engine_plugin.criterions import crf_nll, energy_loss  # noqa: E402,F401
from engine_plugin.models import blstm_crf  # noqa: E402,F401
from engine_plugin.models import tagger_infnets  # noqa: E402,F401
from engine_plugin.scoring import tagging  # noqa: E402,F401
from engine_plugin.tasks import sequence_labeling  # noqa: E402,F401
from engine_plugin.models import nat_infnets  # noqa: E402,F401
from engine_plugin.tasks import translation_energy  # noqa: E402,F401
