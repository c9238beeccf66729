"""The learned counter's network: a compact U-Net with two heads.

Input: one channel, the working-scale background-normalised gray image
(:mod:`workbench.imaging._model_input`). Output, at the same resolution:

- channel 0, the *centroid heat map*: a peak of height 1 at the centroid of every
  primary crystal, inside agglomerates too
  (:mod:`workbench.lab._model_targets`);
- channels 1.., class logits over :data:`CLASSES`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional
from torch.nn.utils.fusion import fuse_conv_bn_eval

from workbench.imaging.detections import IMPERFECTION_KINDS, PARTICLE_KINDS

# Every imperfection kind is its own class, so the counter can say what it removed.
# The order is part of the shipped weights: background, crystal, agglomerate, then
# bubble, debris, fibre, scratch, dust.
CLASSES = ("background", *PARTICLE_KINDS, *IMPERFECTION_KINDS)
CHANNELS = (12, 24, 48, 64)
# Inputs are padded to a multiple of this (three 2x poolings).
SIZE_MULTIPLE = 8


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class CounterNet(nn.Module):
    """U-Net: ``len(channels)`` levels, two 3x3 convolutions per level and side.

    Parameters
    ----------
    channels : tuple of int
        Feature channels per level, finest first.
    """

    def __init__(self, channels: tuple[int, ...] = CHANNELS) -> None:
        super().__init__()
        self.channels = tuple(channels)
        inputs = (1, *channels[:-1])
        self.down = nn.ModuleList(_conv_block(i, o) for i, o in zip(inputs, channels, strict=True))
        self.up = nn.ModuleList(
            _conv_block(channels[level + 1] + channels[level], channels[level])
            for level in reversed(range(len(channels) - 1))
        )
        self.head = nn.Conv2d(channels[0], 1 + len(CLASSES), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for level, block in enumerate(self.down):
            x = block(x)
            if level < len(self.down) - 1:
                skips.append(x)
                x = functional.max_pool2d(x, 2)
        for block in self.up:
            x = functional.interpolate(x, scale_factor=2, mode="nearest")
            x = block(torch.cat([x, skips.pop()], dim=1))
        return self.head(x)


def fused_for_inference(net: CounterNet) -> CounterNet:
    """Fold every BatchNorm into its convolution (eval mode); same output, faster."""
    net.eval()
    for blocks in (net.down, net.up):
        for index, block in enumerate(blocks):
            layers = list(block)
            fused = []
            for layer in layers:
                if isinstance(layer, nn.BatchNorm2d):
                    fused[-1] = fuse_conv_bn_eval(fused[-1], layer)
                else:
                    fused.append(layer)
            blocks[index] = nn.Sequential(*fused)
    return net
