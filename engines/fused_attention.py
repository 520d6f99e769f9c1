"""Attention as ONNX Runtime's fused MultiHeadAttention contrib op in exported graphs.

The TorchScript exporter writes `scaled_dot_product_attention` out as MatMul, Mul, Softmax,
MatMul with transposes, and ONNX Runtime's transformer optimizer fuses none of our blocks
(the decomposition is not a pattern it knows). `with_fused_attention(model)` returns a view of
the model whose attention modules export as one `com.microsoft::MultiHeadAttention` node per
block (query, key, value [B, N, D] in, [B, N, D] out, scale Dh^-0.5 as ours), computing the
same maths in torch. Only ONNX Runtime runs such graphs; OpenVINO reads the plain ones.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from socialmae_rt.engines.module_views import with_attention
from socialmae_rt.model import SocialMAE
from socialmae_rt.model.social_mae import Attention

CONTRIB_DOMAIN = "com.microsoft"


class _MultiHeadAttention(torch.autograd.Function):
    """softmax(q k^T / sqrt(Dh)) v over `num_heads` heads of q, k, v [B, N, D]; one ONNX node."""

    @staticmethod
    def forward(ctx, query, key, value, num_heads: int):  # noqa: ANN001 (autograd signature)
        batch, tokens, dim = query.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(batch, tokens, num_heads, dim // num_heads).transpose(1, 2)  # [B, H, N, Dh]

        out = F.scaled_dot_product_attention(heads(query), heads(key), heads(value))  # [B, H, N, Dh]
        return out.transpose(1, 2).reshape(batch, tokens, dim)  # [B, N, D]

    @staticmethod
    def symbolic(g, query, key, value, num_heads: int):  # noqa: ANN001 (exporter signature)
        out = g.op(f"{CONTRIB_DOMAIN}::MultiHeadAttention", query, key, value, num_heads_i=num_heads)
        out.setType(query.type())
        return out


class FusedAttention(nn.Module):
    """Another Attention's qkv and proj layers around one fused attention op."""

    def __init__(self, attention: Attention) -> None:
        super().__init__()
        self.num_heads = attention.num_heads
        self.qkv, self.proj = attention.qkv, attention.proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # qkv columns are [q | k | v], each D wide (the reshape to [B, N, 3, H, Dh] in Attention)
        query, key, value = self.qkv(x).chunk(3, dim=-1)  # 3 x [B, N, D]
        return self.proj(_MultiHeadAttention.apply(query, key, value, self.num_heads))


def with_fused_attention(model: SocialMAE) -> SocialMAE:
    """A view of `model` whose blocks export their attention as one contrib op (parameters shared)."""
    return with_attention(model, FusedAttention)
