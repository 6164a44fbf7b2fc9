"""The stacked MLP engine's step, on K seeds at once: the packed ``(K, P)`` parameter layout, reusable aligned
scratch tensors, the hand-written forward and backward of K MLPs, and the fused SGD update.

Torch internals live here only, each with its reason: ``aten.threshold_backward`` (ReLU's backward written into
the incoming gradient, no extra tensor) and ``torch._fused_sgd_`` (``SGD(fused=True)``'s kernel on a whole block,
one pass instead of one per parameter); see :func:`mlp_gradients` and :func:`sgd_step`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from permlmc.training.loop import TrainConfig
from permlmc.types import StateDict

ALIGN = 16
"""Elements (64 bytes of float32) on which every seed's slice of a matmul operand starts."""


def empty_aligned(k: int, shape: Sequence[int], like: Tensor) -> Tensor:
    """An uninitialised ``(k, *shape)`` tensor whose seed slices each start at a multiple of ALIGN elements."""
    size = math.prod(shape)
    stride = -(-size // ALIGN) * ALIGN
    return torch.empty(k, stride, dtype=like.dtype, device=like.device)[:, :size].view(k, *shape)


def _aligned(t: Tensor) -> Tensor:
    """``t`` (K, ...) itself if every seed's slice already starts on an ALIGN boundary, else an aligned copy."""
    size = t[0].numel() if len(t) else 0
    if t.is_contiguous() and size % ALIGN == 0 and t.data_ptr() % (ALIGN * t.element_size()) == 0:
        return t
    return empty_aligned(len(t), t.shape[1:], t).copy_(t)


def gather_batches(x: Tensor, y: Tensor, batch: Tensor) -> tuple[Tensor, Tensor]:
    """``(x[batch], y[batch])`` for index rows ``batch`` (K, B): inputs flattened to (K, B, features), labels
    (K, B), by ``index_select`` (several times faster than advanced indexing on the CPU)."""
    flat = batch.reshape(-1)
    return (torch.index_select(x.flatten(1), 0, flat).view(*batch.shape, -1),
            torch.index_select(y, 0, flat).view(batch.shape))


@dataclass(frozen=True)
class Layout:
    """Where each parameter lies in a seed's row of a ``(K, size)`` block (state-dict order, aligned offsets)."""

    shapes: dict[str, tuple[int, ...]]
    offsets: dict[str, int]
    size: int

    @classmethod
    def of(cls, state: StateDict) -> Layout:
        shapes, offsets, end = {}, {}, 0
        for name, value in state.items():
            shapes[name], offsets[name] = tuple(value.shape), end
            end += -(-value.numel() // ALIGN) * ALIGN
        return cls(shapes, offsets, end)

    def views(self, block: Tensor) -> dict[str, Tensor]:
        """``{name: (K, *shape) view}`` of ``block`` ``(K, size)``."""
        return {name: block[:, o : o + math.prod(self.shapes[name])].view(len(block), *self.shapes[name])
                for name, o in self.offsets.items()}

    def pack(self, states: Sequence[StateDict], device: torch.device | str) -> Tensor:
        """``(K, size)`` block of ``states``; padding is zero and stays zero under SGD."""
        block = torch.zeros(len(states), self.size, device=device)
        for name, view in self.views(block).items():
            view.copy_(torch.stack([s[name] for s in states]))
        return block

    def unpack(self, block: Tensor, k: int) -> StateDict:
        return {name: view[k].detach().cpu().clone() for name, view in self.views(block).items()}


class Workspace:
    """Scratch tensors that a block's steps reuse, one per name and shape, each seed's slice aligned.

    On the CPU a fresh tensor of a few hundred KB is a fresh mapping whose pages fault in on first touch, and a
    step of a width-256 block needs several."""

    def __init__(self) -> None:
        self._tensors: dict[tuple[Any, ...], Tensor] = {}

    def get(self, name: str, k: int, shape: tuple[int, ...], like: Tensor, fill: float | None = None) -> Tensor:
        """The ``(k, *shape)`` tensor ``name``; with ``fill``, a constant set to it once, when first made."""
        key = (name, k, shape, like.dtype, like.device)
        tensor = self._tensors.get(key)
        if tensor is None:
            tensor = self._tensors[key] = empty_aligned(k, shape, like)
            if fill is not None:
                tensor.fill_(fill)
        return tensor


def mlp_gradients(params: dict[str, Tensor], grads: dict[str, Tensor], x: Tensor, y: Tensor,
                  totals: tuple[Tensor, Tensor], work: Workspace | None = None) -> None:
    """Forward and backward of K MLPs (:class:`permlmc.models.mlp.MLP`) on their minibatches, by hand.

    ``x`` ``(K, B, ...)``, ``y`` ``(K, B)``. Writes ``dL_k/dθ_k`` of each seed's mean cross-entropy ``L_k`` into
    ``grads`` (views like ``params``: weights ``(K, out, in)``, biases ``(K, out)``) and adds each seed's summed
    cross-entropy and number of misclassified examples to ``totals`` (float64 ``(K,)``, int64 ``(K,)``). The
    products are those of ``nn.Linear``: ``z = b + h W^T`` (one ``baddbmm``), and backward ``dW = dz^T h``,
    ``db = sum_B dz``, ``dh = dz W``; ReLU passes ``dh`` where ``h > 0``. The logits are computed as
    ``(K, classes, B)``: softmax, loss and their gradient then run along contiguous rows of B (a softmax over
    10 contiguous classes took 13x longer).
    """
    k, b = y.shape
    work = work or Workspace()
    names = list(params)
    layers = [(params[names[i]], params[names[i + 1]]) for i in range(0, len(names), 2)]
    h = _aligned(x.flatten(2))  # (K, B, C*H*W)
    inputs = []
    for i, (weight, bias) in enumerate(layers[:-1]):
        inputs.append(h)
        out = work.get(f"z{i}", k, (b, weight.shape[1]), x)
        h = torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2), out=out).relu_()  # (K, B, out)
    inputs.append(h)
    weight, bias = layers[-1]
    logits = work.get("logits", k, (weight.shape[1], b), x)
    torch.baddbmm(bias.unsqueeze(2), weight, h.transpose(1, 2), out=logits)  # (K, classes, B)
    log_p = torch.log_softmax(logits, dim=1)
    target = y.unsqueeze(1)  # (K, 1, B)
    totals[0].sub_(log_p.gather(1, target).sum((1, 2), dtype=torch.float64))
    totals[1].add_((logits.max(1).indices != y).sum(1))  # max's index: argmax's (the first of ties)
    dz_t = torch.exp(log_p, out=work.get("dz", k, tuple(log_p.shape[1:]), x))  # softmax, (K, out, B)
    minus_one = work.get("minus_one", k, (1, b), x, fill=-1.0)
    dz_t.scatter_add_(1, target, minus_one).div_(b)  # d(mean CE)/dz = (p - onehot) / B
    for i in reversed(range(len(layers))):
        weight = layers[i][0]
        torch.bmm(dz_t, inputs[i], out=grads[names[2 * i]])  # (K, out, in)
        torch.sum(dz_t, 2, out=grads[names[2 * i + 1]])  # (K, out)
        if i > 0:
            dh = torch.bmm(dz_t.transpose(1, 2), weight, out=work.get(f"dh{i}", k, (b, weight.shape[2]), x))
            # ReLU's backward, in place (autograd's own kernel: much faster here than masked_fill_ with a mask)
            dz = torch.ops.aten.threshold_backward.grad_input(dh, inputs[i], 0.0, grad_input=dh)  # (K, B, in)
            dz_t = dz.transpose(1, 2)


Gradients = Callable[[dict[str, Tensor], dict[str, Tensor], Tensor, Tensor, tuple[Tensor, Tensor], Workspace], None]

GRADIENTS: dict[str, Gradients] = {
    "mlp": mlp_gradients,
}
"""Families the stacked engine trains (BatchNorm nets, with batch statistics and buffers, are not here)."""


def sgd_step(params: Tensor, grads: Tensor, momenta: Tensor | None, lr: float, config: TrainConfig) -> Tensor | None:
    """``torch.optim.SGD``'s update (no dampening, no Nesterov) on ``(K, P)`` blocks in one pass, by the kernel of
    ``SGD(fused=True)``: ``d = g + wd * p``; ``m = d`` on the first step, else ``m = momentum * m + d``;
    ``p -= lr * m``. Returns the momentum block (created on the first step).

    ``P`` must be a multiple of ALIGN, as :class:`Layout` makes it: on the CPU the kernel's vector loop then
    covers every element, which makes it bitwise the default (foreach) update (tested) and every element's
    rounding independent of its position; its scalar tail rounds the weight decay differently."""
    if params.shape[-1] % ALIGN:
        raise ValueError(f"sgd_step needs rows of a multiple of {ALIGN} elements (a Layout block), got {params.shape}")
    first = momenta is None
    if config.momentum != 0 and momenta is None:
        momenta = torch.empty_like(params)
    torch._fused_sgd_([params], [grads], [] if momenta is None else [momenta], weight_decay=config.weight_decay,
                      momentum=config.momentum, lr=lr, dampening=0.0, nesterov=False, maximize=False,
                      is_first_step=first)
    return momenta


@contextmanager
def one_thread(device: torch.device) -> Iterator[None]:
    """On CPU, one intra-op thread per block: MKL rounds a product differently with more threads, and how it
    shares threads among the K products of a ``bmm`` depends on K."""
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
