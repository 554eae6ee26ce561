"""How far from the model's training actions a value can be and still be an action of it.

NaN is not the only garbage: a committed prefix of 1e30 came back in a published chunk (the
expert keeps a prefix as given), and an executor played a chunk of 1e308 as commands of 1.7e307
(found by fuzzing the nodes). The watchdog vetoes such commands, but not every robot runs one.
The manifest's normalisation gives each action dimension a mean and standard deviation over the
training data; a value further than MAX_ACTION_STD of them from the mean is no action of this
model, whatever produced it: a corrupted model, another planner, other units.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vla_edge.core.manifest import Manifest

MAX_ACTION_STD = 100.0


class ActionRange:
    """Per-dimension mean and standard deviation of the training actions, in a given order."""

    def __init__(self, mean: Sequence[float], std: Sequence[float],
                 limit_std: float = MAX_ACTION_STD):
        self.mean = np.asarray(mean, dtype=np.float64)
        self.std = np.asarray(std, dtype=np.float64)
        if self.mean.shape != self.std.shape or self.mean.ndim != 1:
            raise ValueError(f'mean {self.mean.shape} and std {self.std.shape} must be two '
                             'vectors of one length')
        self.limit_std = limit_std

    @classmethod
    def of_model(cls, manifest: Manifest, names: Sequence[str] | None = None) -> ActionRange:
        """The manifest's action statistics, reordered to `names` when the manifest names its
        actions (the executor's joint_names may list them in another order)."""
        norm = manifest.normalization
        mean, std = list(norm['action_mean']), list(norm['action_std'])
        model_names = [str(n) for n in manifest.raw.get('action_names') or ()]
        if names is not None and model_names and sorted(names) == sorted(model_names):
            order = [model_names.index(n) for n in names]
            mean, std = [mean[i] for i in order], [std[i] for i in order]
        return cls(mean, std)

    def problem(self, values: np.ndarray) -> str | None:
        """None when every value of (..., action_dim) `values` is within the limit, else what
        is wrong, in one line. NaN/inf are reported as such."""
        v = np.asarray(values, dtype=np.float64)
        if not np.all(np.isfinite(v)):
            return 'it has NaN/inf values'
        with np.errstate(over='ignore'):   # 1e308 / std: inf, reported below like any other
            worst = float(np.max(np.abs((v - self.mean) / self.std), initial=0.0))
        if worst > self.limit_std:
            return (f'a value is {worst:.3g} standard deviations from the model\'s training '
                    f'actions (limit {self.limit_std:g}): not this model\'s actions, or in '
                    'other units')
        return None
