"""The extra text input layer of the Table 5.1 baselines (thesis Eq. 5.9).

ClipClap-GZSL (thesis §5.4.1) compares with CJME, AVGZSLNet, AVCA and Hyper-multiple on CLIP
and CLAP features; for fairness each baseline gets one learned layer in front of its text
branch, ``w = W_enc(concat(w_clip, w_clap))``, that maps the concatenated label embedding to
the width the baseline was built for (fastText, 300). ``W_enc`` has the structure of
ClipClap's own ``W_enc`` (Linear, BatchNorm, ReLU, dropout 0.1; reference §5.4).

Shapes: ``C`` classes (or rows), ``D_t`` concatenated label embedding.
"""

from __future__ import annotations

import torch
from torch import nn

from lowshot.layers.mlp import linear_bn_relu

#: output width of W_enc: the fastText width the baselines' text branches expect
TEXT_LAYER_DIM = 300
#: dropout of W_enc (ClipClap's encoders, thesis §5.4.1)
TEXT_LAYER_DROPOUT = 0.1


class TextInput(nn.Module):
    """``W_enc`` when enabled, else the identity.

    Args:
        text_dim: ``D_t`` of the label embeddings the benchmark provides.
        enabled: add the layer (``model.text_input_layer``).

    Attributes:
        out_dim: width of what the text branch receives (300 with the layer, else ``D_t``).
    """

    def __init__(self, text_dim: int, enabled: bool) -> None:
        super().__init__()
        self.layer = (
            linear_bn_relu(text_dim, TEXT_LAYER_DIM, TEXT_LAYER_DROPOUT) if enabled else None
        )
        self.out_dim = TEXT_LAYER_DIM if enabled else text_dim

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        """``[C, D_t]`` -> ``[C, out_dim]``."""
        return w if self.layer is None else self.layer(w)
