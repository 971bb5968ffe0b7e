"""Small MLP building blocks shared by the audio-visual models."""

from __future__ import annotations

from torch import nn


def linear_bn_relu(
    d_in: int, d_out: int, dropout: float = 0.0, batch_norm: bool = True, bn_momentum: float = 0.1
) -> nn.Sequential:
    """Linear -> BatchNorm1d -> ReLU -> Dropout on ``[B, d_in]`` -> ``[B, d_out]``.

    ``bn_momentum`` follows PyTorch (running = (1-m) running + m batch).
    """
    layers: list[nn.Module] = [nn.Linear(d_in, d_out)]
    if batch_norm:
        layers.append(nn.BatchNorm1d(d_out, momentum=bn_momentum))
    layers += [nn.ReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


def embedding_net(
    d_in: int, d_out: int, dropout: float = 0.0, hidden: int | None = None, out_bn_momentum: float = 0.1
) -> nn.Sequential:
    """The published AVCA/TCaF ``EmbeddingNet``: one or two :func:`linear_bn_relu` blocks.

    ``[.., d_in] -> [.., d_out]`` with every Linear followed by BN, ReLU and dropout. As in the
    published code, ``out_bn_momentum`` only applies to the output BatchNorm of the two-layer
    form; the hidden BatchNorm and the one-layer form use PyTorch's default 0.1.
    """
    if hidden is None:
        return linear_bn_relu(d_in, d_out, dropout)
    return nn.Sequential(
        linear_bn_relu(d_in, hidden, dropout), linear_bn_relu(hidden, d_out, dropout, bn_momentum=out_bn_momentum)
    )
