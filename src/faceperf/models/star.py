"""STAR landmark detector: StackedHGNetV1 with 98 WFLW points (OpenFace 3.0 ``Landmark_98.pkl``).

The module tree mirrors the upstream STAR checkpoint so that ``load_state_dict(strict=True)``
works on its ``["net"]`` dict: ``pre.*``, ``hgs.{i}.coordconv.conv``, ``hgs.{i}.{up1,low1,low2,
low3}`` (``low2`` nested three times), ``features.{i}.{0,1}``, ``out_{heatmaps,pointmaps,
edgemaps}.{i}.conv``, ``merge_{features,heatmaps,pointmaps,edgemaps}.{i}.conv`` and the
``e2h_transform.{weight,bias}`` buffers (upstream registers those as persistent, so the
checkpoint holds them). Every residual block owns ``skip_layer`` even where it is unused.

Input ``image`` is (B, 3, 256, 256) float32, BGR, scaled ``x / 255 * 2 - 1``. The only output,
``landmarks``, is (B, 98, 2) in [-1, 1], x then y, decoded in the graph from the last stack.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

STAR_PARAMS = 17_177_332
STAR_INPUT_SIZE = 256
STAR_NUM_POINTS = 98

_NUM_EDGES = 9
_WIDTH = 256
_NUM_STACKS = 4
_HG_DEPTH = 4
# The stem halves the input twice (stride-2 conv, max-pool): every stack works on 64x64 maps.
_MAP_SIZE = STAR_INPUT_SIZE // 4
# Upstream thresholds the previous stack's heatmap at this value to build boundary channels.
_BOUNDARY_THRESHOLD = 0.05
# WFLW boundaries as [first, last] point ranges: contour, right brow, left brow, nose bridge,
# nostrils, right eye, left eye, outer lip, inner lip. The pupils (96, 97) lie on no edge.
_WFLW_EDGES = (
    (0, 32),
    (33, 41),
    (42, 50),
    (51, 54),
    (55, 59),
    (60, 67),
    (68, 75),
    (76, 87),
    (88, 95),
)


def axis_ramp(n: int) -> Tensor:
    """Coordinates of the ``n`` pixels of one axis: pixel ``i`` sits at ``i / (n - 1) * 2 - 1``.

    Args:
        n: Number of pixels along the axis.
    """
    return torch.arange(n, dtype=torch.float32) / (n - 1) * 2 - 1


def coord_grid(size: int) -> Tensor:
    """Coord-conv channels for a square ``size`` x ``size`` map, as upstream builds them.

    Args:
        size: Height and width of the map.

    Returns:
        (1, 3, size, size): ``xx`` varying along rows (H), ``yy`` along columns (W), both in
        [-1, 1], and the radius ``sqrt(xx² + yy²)`` divided by its maximum.
    """
    # float64 NumPy, cast once: torch.sqrt's last bits depend on the CPU (MKL), and this grid
    # becomes a constant of the exported graph, which must be the same bytes on every machine.
    ramp = axis_ramp(size).numpy().astype(np.float64)
    xx = np.broadcast_to(ramp[:, None], (size, size))
    yy = np.broadcast_to(ramp[None, :], (size, size))
    rr = np.sqrt(xx * xx + yy * yy)
    grid = np.stack([xx, yy, rr / rr.max()])[None].astype(np.float32)
    return torch.from_numpy(grid)


def soft_argmax(maps: Tensor, ramps: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """Decode maps to their expected grid coordinate (STAR's default decoder).

    Args:
        maps: (B, N, H, W) non-negative maps.
        ramps: (x ramp of length W, y ramp of length H), as :func:`axis_ramp` builds them.
            Built from the map size when omitted; pass constants when tracing so the exported
            graph holds them as constants rather than shape arithmetic.

    Returns:
        (B, N, 2) as (x, y) in [-1, 1].
    """
    if ramps is None:
        ramps = (axis_ramp(maps.shape[-1]), axis_ramp(maps.shape[-2]))
    gx, gy = (r.to(maps) for r in ramps)
    # The clamp keeps an all-zero map (every point masked out) finite instead of NaN.
    total = maps.sum(dim=(2, 3)).clamp(min=1e-6)
    # Marginals first: two small reductions instead of two full-size grid products.
    x = (maps.sum(dim=2) * gx).sum(dim=-1) / total
    y = (maps.sum(dim=3) * gy).sum(dim=-1) / total
    return torch.stack([x, y], dim=-1)


class _Conv(nn.Module):
    """Conv with bias, then optional BN and ReLU (upstream ``ConvBlock``: keys ``conv``, ``bn``)."""

    def __init__(
        self,
        inp: int,
        out: int,
        kernel: int = 1,
        stride: int = 1,
        bn: bool = False,
        relu: bool = False,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(inp, out, kernel, stride, (kernel - 1) // 2, bias=True)
        self.bn = nn.BatchNorm2d(out) if bn else None
        self.relu = relu

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.relu else x


class _ResBlock(nn.Module):
    """Pre-activation bottleneck (BN-ReLU-conv x3) plus skip."""

    def __init__(self, inp: int, out: int) -> None:
        super().__init__()
        mid = out // 2
        self.bn1 = nn.BatchNorm2d(inp)
        self.conv1 = _Conv(inp, mid, 1)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv2 = _Conv(mid, mid, 3)
        self.bn3 = nn.BatchNorm2d(mid)
        self.conv3 = _Conv(mid, out, 1)
        # Built even when in == out: the checkpoint holds its (unused) weights.
        self.skip_layer = _Conv(inp, out, 1)
        self.use_skip = inp != out

    def forward(self, x: Tensor) -> Tensor:
        residual = self.skip_layer(x) if self.use_skip else x
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        out = self.conv3(F.relu(self.bn3(out)))
        return out + residual


class _CoordConv(nn.Module):
    """Concatenate coord channels (and optional boundary channels), then conv [+ BN + ReLU]."""

    def __init__(
        self,
        inp: int,
        out: int,
        size: int,
        kernel: int,
        stride: int = 1,
        boundary: bool = False,
        bn: bool = False,
        relu: bool = False,
    ) -> None:
        super().__init__()
        extra = 3 + (2 if boundary else 0)
        self.conv = nn.Conv2d(inp + extra, out, kernel, stride, (kernel - 1) // 2, bias=True)
        self.bn = nn.BatchNorm2d(out) if bn else None
        self.relu = relu
        # Constants for the fixed input size; non-persistent because the checkpoint lacks them.
        self.register_buffer("grid", coord_grid(size), persistent=False)

    def forward(self, x: Tensor, heatmaps: Tensor | None = None) -> Tensor:
        parts = [x, self.grid.expand(x.shape[0], -1, -1, -1)]
        if heatmaps is not None:
            # Upstream reads only the last channel (WFLW point 97) and keeps (xx, yy) where it
            # fires; its clamp to [0, 1] first cannot change a > 0.05 test, so it is left out.
            mask = heatmaps[:, -1:] > _BOUNDARY_THRESHOLD
            parts.append(torch.where(mask, self.grid[:, :2], torch.zeros_like(self.grid[:, :2])))
        x = self.conv(torch.cat(parts, dim=1))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.relu else x


class _Hourglass(nn.Module):
    """Recursive hourglass; only the outermost level owns a coord-conv."""

    def __init__(self, depth: int, width: int, coordconv: _CoordConv | None = None) -> None:
        super().__init__()
        self.coordconv = coordconv
        self.up1 = _ResBlock(width, width)
        self.low1 = _ResBlock(width, width)
        self.low2 = _Hourglass(depth - 1, width) if depth > 1 else _ResBlock(width, width)
        self.low3 = _ResBlock(width, width)

    def forward(self, x: Tensor, heatmaps: Tensor | None = None) -> Tensor:
        if self.coordconv is not None:
            x = self.coordconv(x, heatmaps)
        low = self.low3(self.low2(self.low1(F.max_pool2d(x, 2, 2))))
        return self.up1(x) + F.interpolate(low, scale_factor=2.0, mode="nearest")


class _E2HTransform(nn.Module):
    """Fixed edge-to-point map: each point takes the sum of the edge maps it lies on."""

    def __init__(self) -> None:
        super().__init__()
        weight = torch.zeros(STAR_NUM_POINTS, _NUM_EDGES, 1, 1)
        for edge, (first, last) in enumerate(_WFLW_EDGES):
            weight[first : last + 1, edge] = 1.0
        # Points on no edge get a constant 1 so the mask does not silence them.
        bias = (weight.flatten(1).sum(1) < 0.5).float()
        # Persistent: upstream saved both into the checkpoint.
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias)

    def forward(self, edgemaps: Tensor) -> Tensor:
        return F.conv2d(edgemaps, self.weight, self.bias)


def _heads(out: int, count: int, inp: int = _WIDTH) -> nn.ModuleList:
    return nn.ModuleList(_Conv(inp, out) for _ in range(count))


class StackedHGNetV1(nn.Module):
    """STAR's 4-stack hourglass with coord-conv and AAM heads; returns ``(landmarks,)``."""

    def __init__(self) -> None:
        super().__init__()
        stem = _CoordConv(3, 64, STAR_INPUT_SIZE, kernel=7, stride=2, bn=True, relu=True)
        self.pre = nn.Sequential(
            stem,
            _ResBlock(64, 128),
            nn.MaxPool2d(2, 2),
            _ResBlock(128, 128),
            _ResBlock(128, _WIDTH),
        )
        # Stack 0 has no previous heatmap, so its coord-conv lacks the two boundary channels.
        self.hgs = nn.ModuleList(
            _Hourglass(_HG_DEPTH, _WIDTH, _CoordConv(_WIDTH, _WIDTH, _MAP_SIZE, 1, boundary=i > 0))
            for i in range(_NUM_STACKS)
        )
        self.features = nn.ModuleList(
            nn.Sequential(_ResBlock(_WIDTH, _WIDTH), _Conv(_WIDTH, _WIDTH, bn=True, relu=True))
            for _ in range(_NUM_STACKS)
        )
        self.out_heatmaps = _heads(STAR_NUM_POINTS, _NUM_STACKS)
        self.e2h_transform = _E2HTransform()
        self.out_edgemaps = _heads(_NUM_EDGES, _NUM_STACKS)
        self.out_pointmaps = _heads(STAR_NUM_POINTS, _NUM_STACKS)
        merges = _NUM_STACKS - 1
        self.merge_edgemaps = _heads(_WIDTH, merges, inp=_NUM_EDGES)
        self.merge_pointmaps = _heads(_WIDTH, merges, inp=STAR_NUM_POINTS)
        self.merge_features = _heads(_WIDTH, merges)
        self.merge_heatmaps = _heads(_WIDTH, merges, inp=STAR_NUM_POINTS)
        self.register_buffer("ramp", axis_ramp(_MAP_SIZE), persistent=False)

    def forward(self, image: Tensor) -> tuple[Tensor]:
        x = self.pre(image)
        heatmaps: Tensor | None = None
        last = _NUM_STACKS - 1
        for i in range(_NUM_STACKS):
            feature = self.features[i](self.hgs[i](x, heatmaps))
            # Instance norm is per sample and per channel, so samples never mix.
            heatmaps = F.relu(F.instance_norm(self.out_heatmaps[i](feature)))
            pointmaps = torch.sigmoid(self.out_pointmaps[i](feature))
            edgemaps = torch.sigmoid(self.out_edgemaps[i](feature))
            if i < last:
                x = (
                    x
                    + self.merge_features[i](feature)
                    + self.merge_heatmaps[i](heatmaps)
                    + self.merge_pointmaps[i](pointmaps)
                    + self.merge_edgemaps[i](edgemaps)
                )
        # Only the last stack's fused map is decoded; earlier ones fed training losses only.
        fused = self.e2h_transform(edgemaps) * pointmaps * heatmaps
        return (soft_argmax(fused, (self.ramp, self.ramp)),)


def build_star() -> StackedHGNetV1:
    """Build STAR with freshly initialised weights, in eval mode (load a checkpoint after)."""
    return StackedHGNetV1().eval()
