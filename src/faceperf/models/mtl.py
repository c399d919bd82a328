"""OpenFace 3.0 multitask model (``MTL_backbone.pth``): emotion, gaze and action units.

Attribute names reproduce the checkpoint's state-dict keys (``base_model.*`` from timm, heads as in
openface-test 0.1.26), so the plain checkpoint loads with ``strict=True``. The AU head is the
ME-GraphAU node graph applied to eight per-AU projections of one pooled feature.
"""

import torch
import torch.nn.functional as F
from torch import nn

from faceperf.models.efficientnet import EfficientNetB0, build_tf_efficientnet_b0

MTL_PARAMS = 25_346_454
MTL_BACKBONE_PARAMS = 4_007_548
MTL_INPUT_SIZE = 224
AU_NAMES = ("AU01", "AU02", "AU04", "AU06", "AU12", "AU15", "AU20", "AU25")
# Order as documented for Face Mirror; not confirmed upstream.
EMOTION_NAMES = ("Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger", "Contempt")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

FEATURE_DIM = 1280
AU_NEIGHBOURS = 4


def neighbour_adjacency(sim: torch.Tensor, k: int) -> torch.Tensor:
    """Top-k adjacency: 1 where ``sim[..., i, j]`` is at least the k-th largest value of row i.

    Ties with the k-th value are all kept, so a row may have more than k ones (never fewer).

    Args:
        sim: similarities (B, N, N).
        k: neighbours per node.
    """
    kth = sim.topk(k, dim=-1).values[..., -1:]
    return (sim >= kth).to(sim.dtype)


class NodeGraph(nn.Module):
    """One graph layer over AU nodes: x <- relu(x + bnv(A_norm @ V(x) + U(x))).

    A is rebuilt for every sample from dot-product similarity of the (detached) node features and
    normalised symmetrically, D^-1/2 A D^-1/2 with D the row sums.

    Args:
        dim: node feature size.
        num_nodes: number of nodes (BatchNorm1d runs over this axis).
        neighbours: k of the top-k adjacency.
    """

    def __init__(self, dim: int, num_nodes: int, neighbours: int = AU_NEIGHBOURS) -> None:
        super().__init__()
        self.neighbours = neighbours
        self.U = nn.Linear(dim, dim)
        self.V = nn.Linear(dim, dim)
        self.bnv = nn.BatchNorm1d(num_nodes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xd = x.detach()
        adj = neighbour_adjacency(xd @ xd.transpose(1, 2), self.neighbours)
        # Every row holds at least k ones, so the degree is never zero.
        d = adj.sum(-1).pow(-0.5)
        a = adj * d.unsqueeze(-1) * d.unsqueeze(-2)
        return F.relu(x + self.bnv(a @ self.V(x) + self.U(x)))


class AUGraphHead(nn.Module):
    """AU head: per-AU linear nodes, one graph layer, cosine to a learned per-AU prototype.

    Outputs are cosines in [-1, 1] (in practice [0, 1], both factors being rectified); there is
    no sigmoid.

    Args:
        dim: input feature size (also node size).
        num_aus: number of AUs, i.e. graph nodes.
    """

    def __init__(self, dim: int = FEATURE_DIM, num_aus: int = len(AU_NAMES)) -> None:
        super().__init__()
        # Plain Linear, no norm or activation: openface-test 0.1.26 and the parameter count agree.
        self.class_linears = nn.ModuleList(nn.Linear(dim, dim) for _ in range(num_aus))
        self.gnn = NodeGraph(dim, num_aus)
        self.sc = nn.Parameter(torch.empty(num_aus, dim))
        nn.init.xavier_uniform_(self.sc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = torch.stack([lin(x) for lin in self.class_linears], dim=1)
        nodes = self.gnn(nodes)
        proto = F.normalize(F.relu(self.sc), dim=-1)
        return (F.normalize(nodes, dim=-1) * proto).sum(-1)


class MultitaskModel(nn.Module):
    """EfficientNet-B0 trunk with emotion, gaze and AU heads.

    Input: normalised RGB face crops (B, 3, input_size, input_size). Forward returns
    ``(emotion (B, 8) logits, gaze (B, 2) yaw/pitch, au (B, 8) cosines)``.

    Args:
        input_size: square input side; fixes the backbone's SAME padding.
    """

    def __init__(self, input_size: int = MTL_INPUT_SIZE) -> None:
        super().__init__()
        self.input_size = input_size
        self.base_model: EfficientNetB0 = build_tf_efficientnet_b0(input_size)
        dim = self.base_model.num_features
        self.fc_emotion = nn.Linear(dim, dim)
        self.fc_gaze = nn.Linear(dim, dim)
        self.fc_au = nn.Linear(dim, dim)
        self.emotion_classifier = nn.Linear(dim, len(EMOTION_NAMES))
        self.gaze_regressor = nn.Linear(dim, 2)
        self.au_regressor = AUGraphHead(dim, len(AU_NAMES))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f = self.base_model(x)
        emotion = self.emotion_classifier(F.relu(self.fc_emotion(f)))
        gaze = self.gaze_regressor(F.relu(self.fc_gaze(f)))
        au = self.au_regressor(F.relu(self.fc_au(f)))
        return emotion, gaze, au


def build_mtl() -> MultitaskModel:
    """Build the multitask model for 224x224 input, in eval mode, without weights."""
    return MultitaskModel(MTL_INPUT_SIZE).eval()
