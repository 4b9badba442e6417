"""The runner: train and evaluate a spec (data, init, loss, optimizer, loop, logs, checkpoints).

``nnspec.run.train(spec)`` is the notebook entry point; ``nnspec.run.commands`` holds the
functions the ``nnspec train`` and ``nnspec eval`` commands call.
"""

from nnspec.run.api import evaluate_checkpoint, train
from nnspec.run.loop import Summary

__all__ = ["Summary", "evaluate_checkpoint", "train"]
