"""Small networks written as users write them, together covering every op the tracer knows (for tests)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class GatedConvNet(nn.Module):
    """Depthwise and grouped convolutions, squeeze-and-excitation, a residual addition, GroupNorm with two groups,
    PReLU per channel, and a flatten of ``(C, H, W)`` into a Linear."""

    def __init__(self, channels: int = 8, classes: int = 5, size: int = 8) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU())
        self.depthwise = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
        self.norm = nn.BatchNorm2d(channels)
        self.squeeze = nn.Conv2d(channels, channels // 2, 1)
        self.excite = nn.Conv2d(channels // 2, channels, 1)
        self.grouped = nn.Conv2d(channels, channels, 3, padding=1, groups=2)
        self.group_norm = nn.GroupNorm(2, channels)
        self.act = nn.PReLU(channels)
        self.head = nn.Linear(channels * (size // 2) ** 2, classes)

    def forward(self, x: Tensor) -> Tensor:
        h = self.stem(x)  # (N, C, H, W)
        y = F.relu6(self.norm(self.depthwise(h)))
        gate = torch.sigmoid(self.excite(F.relu(self.squeeze(F.adaptive_avg_pool2d(y, 1)))))  # (N, C, 1, 1)
        h = h + y * gate
        h = self.act(self.group_norm(self.grouped(h)))
        h = F.max_pool2d(h, 2)  # (N, C, H / 2, W / 2)
        return self.head(torch.flatten(h, 1))


class ConcatNet(nn.Module):
    """Two branches concatenated along channels (each keeps its permutation), BatchNorm and a conv over the joined
    channels, a 1-d convolution over rows, mean over spatial axes."""

    def __init__(self, classes: int = 5) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 6, 3, padding=1)
        self.left = nn.Conv2d(6, 4, 3, padding=1)
        self.right = nn.Conv2d(6, 5, 1)
        self.joined = nn.BatchNorm2d(9)
        self.mix = nn.Conv2d(9, 7, 1)
        self.rows = nn.Conv1d(7, 6, 3, padding=1)
        self.ln = nn.LayerNorm(6)
        self.head = nn.Linear(6, classes)

    def forward(self, x: Tensor) -> Tensor:
        h = F.gelu(self.stem(x))
        h = torch.cat([self.left(h), torch.tanh(self.right(h))], dim=1)  # (N, 9, H, W)
        h = self.mix(F.silu(self.joined(h))).mean(dim=3)  # (N, 7, H)
        h = F.avg_pool1d(F.relu(self.rows(h)), 2)  # (N, 6, H / 2)
        h = self.ln(h.transpose(1, 2)).amax(dim=1)  # (N, 6)
        return self.head(F.dropout(h, 0.1, self.training))


class TokenNet(nn.Module):
    """A one-block vision transformer written by hand: patch embedding, a class token and position embeddings
    used directly in ``forward``, attention split into heads by reshapes, an MLP, and the class token's head."""

    def __init__(self, dim: int = 8, heads: int = 2, classes: int = 5, size: int = 8, patch: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.patches = nn.Conv2d(3, dim, patch, stride=patch)
        tokens = (size // patch) ** 2
        self.cls = nn.Parameter(torch.randn(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, tokens + 1, dim))
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.q, self.k, self.v, self.out = (nn.Linear(dim, dim) for _ in range(4))
        self.fc1, self.fc2 = nn.Linear(dim, 2 * dim), nn.Linear(2 * dim, dim)
        self.head = nn.Linear(dim, classes)

    def _split(self, x: Tensor) -> Tensor:
        n, t, d = x.shape
        return x.view(n, t, self.heads, d // self.heads).transpose(1, 2)  # (N, heads, T, d / heads)

    def forward(self, x: Tensor) -> Tensor:
        h = self.patches(x).flatten(2).transpose(1, 2)  # (N, T, dim)
        h = torch.cat([self.cls.expand(h.shape[0], -1, -1), h], dim=1) + self.pos  # (N, T + 1, dim)
        a = self.norm1(h)
        q, k, v = self._split(self.q(a)), self._split(self.k(a)), self._split(self.v(a))
        attended = F.scaled_dot_product_attention(q, k, v)  # (N, heads, T, d / heads)
        h = h + self.out(attended.transpose(1, 2).reshape(h.shape))
        h = h + self.fc2(F.gelu(self.fc1(self.norm2(h))))
        return self.head(self.norm3(h)[:, 0])


class CausalBlockNet(nn.Module):
    """A GPT-style causal block between an input projection and a head: one Linear makes queries, keys and values
    (cut apart by ``split``), heads split off by ``unflatten``, causal ``scaled_dot_product_attention``."""

    def __init__(self, inputs: int = 6, dim: int = 8, heads: int = 2, classes: int = 5) -> None:
        super().__init__()
        self.heads = heads
        self.inp = nn.Linear(inputs, dim)
        self.ln1, self.ln2, self.ln_f = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.c_attn, self.c_proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.fc, self.proj = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x: Tensor) -> Tensor:
        h = self.inp(x)  # (N, T, dim)
        q, k, v = self.c_attn(self.ln1(h)).split(h.shape[-1], dim=2)
        q, k, v = (t.unflatten(-1, (self.heads, -1)).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (N, heads, T, dim / heads)
        h = h + self.c_proj(y.transpose(1, 2).flatten(2))
        h = h + self.proj(F.gelu(self.fc(self.ln2(h))))
        return self.head(self.ln_f(h))  # (N, T, classes)


class MatmulAttentionNet(nn.Module):
    """Attention written as ``softmax(q @ k^T / sqrt(d)) @ v``; with ``qk_norm`` a LayerNorm of one weight over every
    head's query and key units, which fixes the order within a head (heads then move as blocks)."""

    def __init__(self, dim: int = 8, heads: int = 2, classes: int = 3, qk_norm: bool = False) -> None:
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.inp, self.q, self.k, self.v, self.out = (nn.Linear(dim, dim) for _ in range(5))
        self.qk_norm = nn.LayerNorm(dim // heads) if qk_norm else nn.Identity()
        self.head = nn.Linear(dim, classes)

    def forward(self, x: Tensor) -> Tensor:
        h = self.inp(x)
        q, k, v = (layer(h).unflatten(-1, (self.heads, -1)).transpose(1, 2) for layer in (self.q, self.k, self.v))
        scores = torch.softmax(self.qk_norm(q) @ self.qk_norm(k).transpose(-2, -1) * self.scale, dim=-1)
        h = h + self.out((scores @ v).transpose(1, 2).flatten(2))
        return self.head(h.mean(1))


class QKNormNet(MatmulAttentionNet):
    def __init__(self) -> None:
        super().__init__(qk_norm=True)


class ModuleAttentionNet(nn.Module):
    """``nn.MultiheadAttention`` (batch first, self-attention) in a residual block."""

    def __init__(self, inputs: int = 3, dim: int = 16, heads: int = 4, classes: int = 2) -> None:
        super().__init__()
        self.inp = nn.Linear(inputs, dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.head = nn.Linear(dim, classes)

    def forward(self, x: Tensor) -> Tensor:
        h = self.inp(x)
        attended, _ = self.attn(h, h, h, need_weights=False)
        return self.head((h + attended).mean(1))


def torchvision_vit() -> nn.Module:
    """torchvision's ViT (``nn.MultiheadAttention`` in its encoder blocks), two small layers."""
    from torchvision.models import VisionTransformer

    return VisionTransformer(image_size=8, patch_size=4, num_layers=2, num_heads=2, hidden_dim=8, mlp_dim=16,
                             num_classes=3)


TRACED = {"gated_conv": (GatedConvNet, (2, 3, 8, 8)), "concat": (ConcatNet, (2, 3, 8, 8)),
          "tokens": (TokenNet, (2, 3, 8, 8)), "causal_block": (CausalBlockNet, (2, 5, 6)),
          "matmul_attention": (MatmulAttentionNet, (2, 5, 8)), "qk_norm": (QKNormNet, (2, 5, 8)),
          "module_attention": (ModuleAttentionNet, (2, 4, 3)), "torchvision_vit": (torchvision_vit, (2, 3, 8, 8))}
"""Name -> (class, example input shape)."""


class Cumulative(nn.Module):
    """An op the tracer does not know: a cumulative sum over channels."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(4, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(torch.cumsum(self.conv(x), dim=1).mean(dim=(2, 3)))


class Branching(nn.Module):
    """Python control flow on a tensor's value, which torch.fx cannot trace, inside submodule ``block``."""

    class Block(nn.Module):
        def forward(self, x: Tensor) -> Tensor:
            return x if x.sum() > 0 else -x

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.block = Branching.Block()
        self.head = nn.Linear(4, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.block(self.conv(x)).mean(dim=(2, 3)))


class Awkward(nn.Module):
    """Ops whose arguments are easy to misread: a norm and a variance with positional arguments, a scale read
    through ``.data``, three concatenated parts of equal size after a BatchNorm registered first, a position
    embedding cut to the input's length, and causal attention over keys of a learnt memory."""

    def __init__(self, dim: int = 6, classes: int = 3) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(3 * dim)
        self.a, self.b, self.c = nn.Linear(4, dim), nn.Linear(4, dim), nn.Linear(4, dim)
        self.scale = nn.Parameter(torch.rand(3 * dim) + 0.5)
        self.pos = nn.Parameter(torch.randn(1, 16, 3 * dim))
        self.memory = nn.Parameter(torch.randn(1, 5, 3 * dim))
        self.head = nn.Linear(3 * dim, classes)

    def forward(self, x: Tensor) -> Tensor:  # x: (N, T, 4)
        h = torch.cat([self.a(x), self.b(x), self.c(x)], dim=2) * self.scale.data  # (N, T, 3 dim)
        h = h + self.pos[:, : x.size(1)]
        h = self.norm(h.transpose(1, 2)).transpose(1, 2)
        h = h / (h.norm(2, 2, True) + 1) + h.var(2, True, True)
        memory = self.memory.expand(x.shape[0], -1, -1)
        h = F.scaled_dot_product_attention(h, memory, memory, is_causal=True)
        return self.head(h.mean(dim=1))


TRACED["awkward"] = (Awkward, (2, 5, 4))
