"""Views of a model with some modules computed another way, parameters shared, the model untouched."""

from __future__ import annotations

import copy
from typing import Callable

from torch import nn

from socialmae_rt.model import SocialMAE
from socialmae_rt.model.social_mae import Attention


def with_attention(model: SocialMAE, make: Callable[[Attention], nn.Module]) -> SocialMAE:
    """A shallow copy of `model` whose every block's attention is `make(block.attn)`.

    The copy has its own module tree where it differs; every parameter is the model's own.
    """
    view = copy.copy(model)
    view._modules = dict(model._modules)  # swapping in the copy must not reach the model
    for group in ("blocks_a", "blocks_v", "blocks_u"):
        blocks = nn.ModuleList()
        for block in getattr(model, group):
            swapped = copy.copy(block)
            swapped._modules = dict(block._modules)
            swapped.attn = make(block.attn)
            blocks.append(swapped)
        setattr(view, group, blocks)
    return view
