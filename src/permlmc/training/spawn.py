"""Spawning (Frankle et al., ICML 2020, "Linear Mode Connectivity and the Lottery Ticket Hypothesis"): train a
parent network to a spawn point, then fork children that differ only in their data order from there on.

The parent is network ``seed`` trained by :func:`permlmc.training.loop.train`'s protocol for ``at`` epochs (the
learning-rate schedule is the full run's, so a child continues it where the parent stopped). Each child starts from
the parent's weights, optimiser state (SGD momenta, AdamW moments), history and step count at that point and trains
to the end of the same protocol (``max_epochs`` or the stopping rule), drawing its minibatch order from a stream of
its own: ``seeding.generator(seed, DATA_ORDER, CHILD_ORDER, child)``. A parent that met the stopping rule before
``at`` forks there; a spawn point at or past the end gives children that are the parent, which is
:func:`~permlmc.training.loop.train`'s network ``seed`` itself (tested). At ``at = 0`` the children share only their
initialisation.

:func:`snapshots` keeps one network's weights at chosen epochs of its training (the barrier-vs-epoch study of
independent pairs).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from permlmc import seeding
from permlmc.evaluation import functional_forward
from permlmc.models import Architecture
from permlmc.training import loop
from permlmc.types import StateDict

CHILD_ORDER = 2
"""Member of the data-order stream that children draw from (member 1 is the learnt lines' sampling)."""


def spawn(
    arch: Architecture, seed: int, config: loop.TrainConfig, train_xy: tuple[Tensor, Tensor],
    test_xy: tuple[Tensor, Tensor], *, at: int, children: Sequence[int], device: torch.device | str = "cpu",
) -> dict[int, loop.TrainResult]:
    """Children ``children`` (numbers >= 1) of network ``seed`` spawned after ``at`` epochs (module doc)."""
    if at < 0:
        raise ValueError(f"a spawn point is a number of epochs >= 0, got {at}")
    if not children or min(children) < 1:
        raise ValueError(f"children are numbered from 1, got {list(children)}")
    x, y = (t.to(device) for t in train_xy)
    stamp = loop.fingerprint(arch, seed, config)
    model = loop.initialise(arch, seed).to(device)
    parent_engine = loop.SequentialEngine(model, config, x, y, seeding.generator(seed, seeding.DATA_ORDER), stamp)
    parent = loop.Run(seed)
    loop.run_epochs(config, [parent], parent_engine, abort=_after(parent, at), network=arch.name)
    forked = parent.stopped_by == "target_loss"
    results = {}
    for child in children:
        child_model = copy.deepcopy(model)
        order = seeding.generator(seed, seeding.DATA_ORDER, CHILD_ORDER, child)
        engine = loop.SequentialEngine(child_model, config, x, y, order, stamp)
        engine.optimiser.load_state_dict(copy.deepcopy(parent_engine.optimiser.state_dict()))
        run = loop.Run(seed, history=list(parent.history), steps=parent.steps,
                       start=config.max_epochs if forked else len(parent.history), stopped_by=parent.stopped_by)
        loop.run_epochs(config, [run], engine, network=f"{arch.name} child {child}")
        state = {k: v.detach().cpu().clone() for k, v in child_model.state_dict().items()}
        results[child] = loop.result_of(run, functional_forward(child_model), state, train_xy, test_xy, device)
    return results


def snapshots(
    arch: Architecture, seed: int, config: loop.TrainConfig, train_xy: tuple[Tensor, Tensor],
    epochs: Sequence[int], *, device: torch.device | str = "cpu",
) -> dict[int, StateDict]:
    """Network ``seed``'s weights after each of ``epochs`` epochs of :func:`permlmc.training.loop.train`'s run (one
    run, paused at each; an epoch past the end, or past the stopping rule, gives the final weights)."""
    x, y = (t.to(device) for t in train_xy)
    model = loop.initialise(arch, seed).to(device)
    engine = loop.SequentialEngine(model, config, x, y, seeding.generator(seed, seeding.DATA_ORDER),
                                   loop.fingerprint(arch, seed, config))
    run = loop.Run(seed)
    kept: dict[int, StateDict] = {}
    for epoch in sorted(set(epochs)):
        if run.stopped_by != "target_loss":
            run.start = len(run.history)
            loop.run_epochs(config, [run], engine, abort=_after(run, epoch), network=arch.name)
        kept[epoch] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return kept


def _after(run: loop.Run, epochs: int) -> Callable[[], bool]:
    """True once ``run`` has trained ``epochs`` epochs."""
    return lambda: len(run.history) >= epochs
