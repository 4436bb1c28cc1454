"""GIN (Xu et al., 2019, "How powerful are graph neural networks?") for graph classification, MixupE Table 6.

Input: a PyG `Batch` (`x` [N, F] node features, `edge_index` [2, E], `batch` [N], `num_graphs`).
"5 graph neural network layers that give rise to the readout, which a non-linear MLP then operates on"
(MixupE §4.4), in Xu et al.'s setting (their §7, paraphrased: their paper is not in shared/papers): 5 GNN
layers counting the input layer, i.e. the input features h⁽⁰⁾ and 4 GIN layers; MLPs of 2 layers with batch
normalization on every hidden layer; 64 hidden units (their choice for the social sets; CHOSEN for all six,
as the issue states); GIN-0 (ε = 0): h⁽ᵏ⁾ = ReLU(BN(MLP⁽ᵏ⁾(h⁽ᵏ⁻¹⁾ + Σ_{u∈N(v)} h_u⁽ᵏ⁻¹⁾))) with
MLP = Linear → BN → ReLU → Linear and sum aggregation. Readout (Xu et al. eq. 4.2): the sum pooling of
every layer's node features, concatenated, h_G = CONCAT(Σ_v h_v⁽ᵏ⁾ | k = 0..4). `representation()` is that
pooling: Mixup and MixupE mix h_G ("at the graph-level readout stage", mixing/hidden.py).
The classifier on h_G: CHOSEN the paper's "non-linear MLP", Linear(D, hidden) → ReLU → dropout → Linear(hidden,
C), with dropout 0.5 (of Xu et al.'s tuned {0, 0.5} after the dense layer; 0.5 fixed here).
No PyG import: aggregation and pooling are `index_add_` sums.
"""

from __future__ import annotations

import torch
from torch import nn

from msda_cli.checks import check_float, check_int
from msda_cli.models import register_model


def sum_neighbours(h: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
    """Σ_{u∈N(v)} h_u for every node v (edges as listed: the TU files list both directions)."""
    return torch.zeros_like(h).index_add_(0, edge_index[1], h.index_select(0, edge_index[0]))


class GINLayer(nn.Module):
    def __init__(self, d_in: int, hidden: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(d_in, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, hidden))
        self.norm = nn.BatchNorm1d(hidden)

    def forward(self, h, edge_index):
        return torch.relu(self.norm(self.mlp(h + sum_neighbours(h, edge_index))))


class SumReadout(nn.Module):
    """h_G: each layer's node features summed per graph, concatenated [B, Σ_k d_k]."""

    def forward(self, layers: list, batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
        h = torch.cat(layers, dim=1)
        return h.new_zeros(num_graphs, h.shape[1]).index_add_(0, batch, h)


class GIN(nn.Module):
    def __init__(self, num_classes: int, in_features: int, hidden: int = 64, layers: int = 5, dropout: float = 0.5):
        super().__init__()
        layers = check_int("gin layers", layers, min=1)
        hidden = check_int("gin hidden", hidden, min=1)
        dims = [in_features] + [hidden] * (layers - 1)
        self.layers = nn.ModuleList(GINLayer(a, hidden) for a in dims[:-1])
        self.readout = SumReadout()
        self.head = nn.Sequential(nn.Linear(sum(dims), hidden), nn.ReLU(),
                                  nn.Dropout(check_float("gin dropout", dropout, min=0, max=1, open="max")),
                                  nn.Linear(hidden, num_classes))

    def forward(self, graphs):
        h, states = graphs.x, [graphs.x]
        for layer in self.layers:
            h = layer(h, graphs.edge_index)
            states.append(h)
        return self.head(self.readout(states, graphs.batch, graphs.num_graphs))

    def representation(self) -> nn.Module:
        return self.readout


@register_model("gin", label="GIN")
def gin(num_classes: int, in_chans: int = 1, hidden: int = 64, layers: int = 5, dropout: float = 0.5) -> nn.Module:
    """GIN-0 on graphs with `in_chans` node features: `layers` counts the input layer (Xu et al.'s 5)."""
    return GIN(num_classes, in_chans, hidden=hidden, layers=layers, dropout=dropout)
