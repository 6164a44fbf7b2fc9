"""Interpolation curves with the input layer computed twice per data chunk instead of once per alpha.

The layer that reads the raw input is affine in its parameters, so along the path its output is the
interpolation of the endpoints' outputs:

    W(alpha) x + b(alpha) = (1 - alpha) (W_A x + b_A) + alpha (W_B x + b_B).

For an MLP on 784 (or 3,072) inputs that layer is most of the work of a forward pass; computing it for A and B
and mixing the two outputs for every alpha makes an 11-alpha curve several times cheaper, equal to the direct
computation up to float rounding (exactly equal at alpha = 0 and 1). Used for BatchNorm mode ``interpolate``
when the first parametrised module a forward pass calls is an ``nn.Linear``; convolutional first layers gain
little (3 input channels) and their outputs would be large to hold.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor, nn
from torch.func import vmap
from torch.utils.hooks import RemovableHandle

from permlmc.evaluation import Forward, Metrics, functional_forward, loss_sum, wrong_count
from permlmc.types import StateDict


def probe(model: nn.Module, example: Tensor, hooks: Sequence[RemovableHandle]) -> None:
    """Run ``model`` (eval mode, no grad) on the first of ``example`` where the model's own parameters live, for
    what ``hooks`` record; the hooks are removed afterwards, also on failure."""
    try:
        with torch.no_grad():
            model.eval()(example[:1].to(model_device(model, example)))
    finally:
        for hook in hooks:
            hook.remove()


def linear_input_layer(model: nn.Module, example: Tensor) -> nn.Linear | None:
    """The ``nn.Linear`` that is the first module with parameters called on ``example`` (one input), or None."""
    order: list[nn.Module] = []
    probe(model, example, [
        module.register_forward_pre_hook(lambda m, args: order.append(m))
        for module in model.modules() if any(True for _ in module.parameters(recurse=False))
    ])
    return order[0] if order and isinstance(order[0], nn.Linear) else None


def model_device(model: nn.Module, fallback: Tensor) -> torch.device:
    """Where ``model``'s own parameters live (a skeleton may sit elsewhere than the tensors it is called with)."""
    return next((p.device for p in model.parameters()), fallback.device)


def endpoint_outputs(forward: Forward, layer: nn.Module, a: StateDict, b: StateDict, chunk: Tensor) -> list[Tensor]:
    """``layer``'s outputs on ``chunk`` in networks ``a`` and ``b``: [(N, units), (N, units)]."""
    outputs: list[Tensor] = []
    hook = layer.register_forward_hook(lambda m, args, out: outputs.append(out))
    try:
        forward(a, chunk)
        forward(b, chunk)
    finally:
        hook.remove()
    return outputs


@contextmanager
def _output_replaced(module: nn.Module, value: Tensor) -> Iterator[None]:
    """Make ``module`` return ``value`` whatever its input (an instance attribute shadows the class method)."""
    module.forward = lambda *args, **kwargs: value
    try:
        yield
    finally:
        del module.forward


@torch.no_grad()
def curve_metrics(
    model: nn.Module, layer: nn.Linear, a: StateDict, b: StateDict, alphas: Sequence[float], x: Tensor, y: Tensor,
    batch_size: int = 4096,
) -> list[Metrics]:
    """Mean cross-entropy and error of ``interpolate(a, b, alpha)`` on ``(x, y)`` for every alpha."""
    forward = functional_forward(model)
    params = [{k: torch.lerp(v, b[k], float(t)) if v.is_floating_point() else v for k, v in a.items()}
              for t in alphas]
    loss = torch.zeros(len(alphas), dtype=torch.float64, device=x.device)
    wrong = torch.zeros(len(alphas), dtype=torch.int64, device=x.device)
    for start in range(0, len(x), batch_size):
        chunk, target = x[start : start + batch_size], y[start : start + batch_size]
        out_a, out_b = endpoint_outputs(forward, layer, a, b, chunk)  # (N, units) each
        for i, alpha in enumerate(alphas):
            with _output_replaced(layer, torch.lerp(out_a, out_b, float(alpha))):
                logits = forward(params[i], chunk)
            loss[i] += loss_sum(logits, target)
            wrong[i] += wrong_count(logits, target)
    n = max(len(x), 1)
    totals = zip(loss.tolist(), wrong.tolist(), strict=True)
    return [Metrics(loss=total / n, error=count / n) for total, count in totals]


@torch.no_grad()
def curve_metrics_stacked(
    model: nn.Module, layer: nn.Linear, a: StateDict, b: StateDict, stacked: StateDict, alphas: Sequence[float],
    x: Tensor, y: Tensor, batch_size: int = 4096,
) -> tuple[Tensor, Tensor]:
    """:func:`curve_metrics` with the alphas stacked: ``stacked`` holds the interpolated parameters at ``alphas``
    (a leading axis of K), the K mixed outputs of ``layer`` go with them through one vectorised forward per
    chunk. Returns mean cross-entropy and error, (K,) float64 each, left on the device (no host sync). A forward
    covers ``batch_size`` rows in all, as in :func:`permlmc.evaluation.evaluate_stacked`."""
    forward = functional_forward(model)

    def one(params: StateDict, mixed: Tensor, chunk: Tensor) -> Tensor:
        with _output_replaced(layer, mixed):
            return forward(params, chunk)

    vmapped = vmap(one, in_dims=(0, 0, None))
    k = len(alphas)
    loss = torch.zeros(k, dtype=torch.float64, device=x.device)
    wrong = torch.zeros(k, dtype=torch.int64, device=x.device)
    rows = max(1, batch_size // k)
    dtype = next(v.dtype for v in a.values() if v.is_floating_point())  # that of the layer's outputs
    weight = torch.tensor([float(alpha) for alpha in alphas], dtype=dtype).to(x.device).view(k, 1, 1)
    for start in range(0, len(x), rows):
        chunk, target = x[start : start + rows], y[start : start + rows]
        out_a, out_b = endpoint_outputs(forward, layer, a, b, chunk)  # (n, units) each
        mixed = torch.lerp(out_a.unsqueeze(0), out_b.unsqueeze(0), weight)  # (K, n, units)
        logits = vmapped(stacked, mixed, chunk)  # (K, n, C)
        loss += loss_sum(logits, target)
        wrong += wrong_count(logits, target)
    n = max(len(x), 1)
    return loss / n, wrong.double() / n
