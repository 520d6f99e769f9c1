"""Unstructured random masking of patch tokens for masked-autoencoder pretraining.

Each sample gets its own random permutation of its tokens (argsort of Gaussian noise, as the
reference does); the first `num_visible` tokens of the permutation stay visible, the rest are
hidden. `ids_restore` undoes the permutation, so the decoder can put mask tokens back in place.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def num_visible_tokens(num_tokens: int, mask_ratio: float) -> int:
    """Tokens left visible: int(N * (1 - ratio)) exactly as the reference counts them.

    For the released model (512 audio, 784 video tokens, ratio 0.75) that keeps 128 and 196,
    i.e. exactly 75% masked. Where N * ratio is not whole, the reference's floor masks one more.
    """
    return int(num_tokens * (1 - mask_ratio))


@dataclass
class MaskedTokens:
    """One modality after masking."""

    visible: torch.Tensor  # [B, K, D] the kept tokens, in the permuted order
    mask: torch.Tensor  # [B, N] 1.0 where a token is hidden, 0.0 where visible (original order)
    ids_keep: torch.Tensor  # [B, K] original index of each visible token
    ids_restore: torch.Tensor  # [B, N] gather index: permuted order -> original order

    @property
    def num_visible(self) -> int:
        return self.visible.shape[1]

    @property
    def num_tokens(self) -> int:
        return self.mask.shape[1]


def random_masking(
    tokens: torch.Tensor, mask_ratio: float, generator: torch.Generator | None = None
) -> MaskedTokens:
    """Keep a random `1 - mask_ratio` of each sample's tokens (a different subset per sample)."""
    batch, num_tokens, dim = tokens.shape
    num_visible = num_visible_tokens(num_tokens, mask_ratio)
    noise = torch.randn(batch, num_tokens, device=tokens.device, generator=generator)  # [B, N]
    ids_shuffle = torch.argsort(noise, dim=1)  # [B, N] permuted order -> original index
    ids_restore = torch.argsort(ids_shuffle, dim=1)  # [B, N] its inverse
    ids_keep = ids_shuffle[:, :num_visible]  # [B, K]
    visible = torch.gather(tokens, 1, ids_keep.unsqueeze(-1).expand(-1, -1, dim))  # [B, K, D]
    # Hidden = 1 in the permuted order (positions K..N-1), then brought back to the original order.
    # float32 even under autocast, so loss sums over many patches never overflow half precision.
    mask = torch.ones(batch, num_tokens, device=tokens.device, dtype=torch.float32)  # [B, N]
    mask[:, :num_visible] = 0
    mask = torch.gather(mask, 1, ids_restore)  # [B, N]
    return MaskedTokens(visible=visible, mask=mask, ids_keep=ids_keep, ids_restore=ids_restore)


def restore_with_mask_tokens(
    visible: torch.Tensor, mask_token: torch.Tensor, ids_restore: torch.Tensor
) -> torch.Tensor:
    """Visible tokens [B, K, D] + a learned mask token for every hidden slot -> [B, N, D], original order."""
    batch, num_visible, dim = visible.shape
    num_hidden = ids_restore.shape[1] - num_visible
    fillers = mask_token.to(visible.dtype).expand(batch, num_hidden, dim)  # [B, N - K, D]
    permuted = torch.cat([visible, fillers], dim=1)  # [B, N, D] in the permuted order
    return torch.gather(permuted, 1, ids_restore.unsqueeze(-1).expand(-1, -1, dim))  # [B, N, D]
