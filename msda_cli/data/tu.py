"""TUDatasets (Morris et al.) for MixupE Table 6: MUTAG, NCI1, PTC_MR, PROTEINS, IMDB-BINARY, IMDB-MULTI.

Files: the TU format, `<root>/<NAME>/raw/<NAME>_A.txt` (PyTorch Geometric's `TUDataset` layout) or
`<root>/<NAME>/<NAME>_A.txt` (the unzipped archive), with `_graph_indicator.txt`, `_graph_labels.txt`
and, where the set has them, `_node_labels.txt`. They are parsed by `torch_geometric.io.read_tu_data`,
the reader `TUDataset.process` calls, without its processed cache: nothing is written into the data folder.

Node features as Xu et al. (2019, "How powerful are graph neural networks?", §7): "For bioinformatic
graphs, the nodes have categorical input features" (one-hot node labels; continuous attributes are not
used), "for social networks ... we use one-hot encodings of node degrees" (the IMDB sets, which have no
node labels; degrees up to the data set's largest).

Folds: "10-fold cross-validation" (MixupE §4.4, Xu et al.'s protocol): a stratified split of all graphs
into `folds` parts, shuffled with `split_seed` (0, fixed: every seed and method sees the same folds, as
Xu et al.'s `StratifiedKFold(shuffle=True, random_state=seed)`); option `fold` (0..folds-1) is the test
part, the rest the training split. A sample is `(Data(x, edge_index), label)`; `info.collate` batches
them into a PyG `Batch` and a label tensor.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch
from torch.utils.data import Dataset

from msda_cli.checks import check_int
from msda_cli.data import DatasetInfo, LabeledDataset, fail_missing, register_dataset, resolve_root
from msda_cli.errors import MsdaError

URL = "https://www.chrsmrrs.com/graphkerneldatasets"  # the archives TUDataset downloads
NEEDED = ("A", "graph_indicator", "graph_labels")


def pyg(module: str):
    """A torch_geometric module, imported on first use (`msda --help` does not pay for it), without the
    FutureWarning its import raises on torch.jit.script."""
    import importlib
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)
        return importlib.import_module(module)


def _folder(root, name: str) -> Path:
    base = resolve_root(root) / name
    for folder in (base / "raw", base):
        if all((folder / f"{name}_{part}.txt").is_file() for part in NEEDED):
            return folder
    return fail_missing(name, f"{base}/raw/{name}_A.txt (and _graph_indicator.txt, _graph_labels.txt)",
                        f"Unzip {URL}/{name}.zip into {resolve_root(root)}")


def degree_one_hot(edge_index: torch.Tensor, num_nodes: int, size: int) -> torch.Tensor:
    """[N, size] one-hot of each node's degree (its number of listed edges as a source)."""
    degree = torch.bincount(edge_index[0], minlength=num_nodes)
    return torch.nn.functional.one_hot(degree, size).float()


@lru_cache(maxsize=4)
def read_graphs(folder: str, name: str) -> tuple[list, torch.Tensor, int]:
    """(per-graph (features [n, F], edge_index [2, e]) pairs, labels [G] (0..C-1), number of classes)."""
    read_tu_data = pyg("torch_geometric.io").read_tu_data
    try:
        data, slices, sizes = read_tu_data(folder, name)
    except Exception as e:  # any parse failure of the user's files: one line
        raise MsdaError(f"{name}: cannot read the TU files in {folder} ({type(e).__name__}: {e})") from None
    y = data.y.view(-1).long()
    if len(y) != len(slices["y"]) - 1 or len(y) < 2:
        raise MsdaError(f"{name}: {folder}/{name}_graph_labels.txt does not give one label per graph")
    n_attr, n_labels = sizes["num_node_attributes"], sizes["num_node_labels"]
    if data.x is not None:
        nodes = (slices["x"][1:] - slices["x"][:-1]).tolist()
    else:  # neither labels nor attributes: read_tu_data keeps each graph's node count
        nodes = list(data._num_nodes)
    edge_slice, node_start = slices["edge_index"], [0, *torch.tensor(nodes).cumsum(0).tolist()]
    edges = [data.edge_index[:, edge_slice[i]:edge_slice[i + 1]] for i in range(len(y))]
    if n_labels:  # the one-hot node labels read_tu_data puts after the continuous attributes
        features = [data.x[node_start[i]:node_start[i + 1], n_attr:n_attr + n_labels] for i in range(len(y))]
    else:  # the social sets: one-hot degrees, up to the data set's largest degree
        size = max(int(torch.bincount(e[0], minlength=n).max()) if n else 0 for e, n in zip(edges, nodes)) + 1
        features = [degree_one_hot(e, n, size) for e, n in zip(edges, nodes)]
    return list(zip(features, edges)), y, int(y.max()) + 1


def stratified_folds(targets: torch.Tensor, folds: int, seed: int) -> torch.Tensor:
    """The fold (0..folds-1) of every sample: each class's samples, in a seeded random order, dealt
    round-robin, so every fold holds ⌊n_c/folds⌋ or ⌈n_c/folds⌉ samples of class c."""
    g = torch.Generator().manual_seed(int(seed))
    fold = torch.empty(len(targets), dtype=torch.long)
    offset = 0
    for c in torch.unique(targets).tolist():  # ascending classes: the draws do not depend on sample order
        members = torch.nonzero(targets == c).flatten()
        members = members[torch.randperm(len(members), generator=g)]
        fold[members] = (torch.arange(len(members)) + offset) % folds
        offset += len(members)  # the next class starts where this one stopped: folds stay balanced in size
    return fold


class Graphs(Dataset):
    """Graph `i` as (torch_geometric Data(x, edge_index), label)."""

    def __init__(self, graphs: list, targets: torch.Tensor):
        self.graphs, self.targets = graphs, targets

    def __len__(self) -> int:
        return len(self.graphs)

    def __getitem__(self, i):
        Data = pyg("torch_geometric.data").Data
        x, edges = self.graphs[i]
        return Data(x=x, edge_index=edges, num_nodes=x.shape[0]), int(self.targets[i])


def collate_graphs(samples: list) -> tuple:
    """A PyG `Batch` of the samples' graphs and their labels [B]."""
    Batch = pyg("torch_geometric.data").Batch
    return Batch.from_data_list([g for g, _ in samples]), torch.tensor([y for _, y in samples], dtype=torch.long)


def tu_dataset(key: str, root=None, train: bool = True, fold: int = 0, folds: int = 10,
               split_seed: int = 0) -> LabeledDataset:
    """Data set `key` of TU_SETS: the graphs of the training folds, or (train False) of fold `fold`."""
    name = TU_SETS[key][0]
    folds = check_int("data.options.folds", folds, min=2)
    fold = check_int("data.options.fold", fold, min=0, max=folds - 1)
    split_seed = check_int("data.options.split_seed", split_seed, min=0)
    folder = _folder(root, name)
    graphs, y, num_classes = read_graphs(str(folder), name)
    if len(y) < folds:
        raise MsdaError(f"{name}: {len(y)} graphs cannot make {folds} folds")
    chosen = torch.nonzero((stratified_folds(y, folds, split_seed) == fold) != train).flatten()
    features = graphs[0][0].shape[1]
    info = DatasetInfo(name=key, num_classes=num_classes, in_chans=features, image_size=0, mean=(),
                       std=(), classes=[str(c) for c in range(num_classes)], collate=collate_graphs,
                       note=f"fold {fold} of {folds} (split seed {split_seed}) is the test split")
    targets = y[chosen]
    return LabeledDataset(Graphs([graphs[i] for i in chosen.tolist()], targets), info, targets)


def _register(key: str, name: str, label: str) -> None:
    def factory(root=None, train: bool = True, augment: bool = True, fold: int = 0, folds: int = 10,
                split_seed: int = 0) -> LabeledDataset:
        return tu_dataset(key, root, train, fold, folds, split_seed)

    factory.__doc__ = f"TUDataset {name}: graphs, 10-fold cross-validation (`fold`)."
    register_dataset(key, label=label)(factory)


# MixupE Table 6's rows: "MUTAG, NCI1, PTC, PROTEINS, IMDB-BINARY and IMDB-MULTI" (PTC: Xu et al.'s PTC_MR);
# registered name -> (the files' name, the label a report shows)
TU_SETS = {"mutag": ("MUTAG", "MUTAG"), "nci1": ("NCI1", "NCI1"), "ptc": ("PTC_MR", "PTC"),
           "proteins": ("PROTEINS", "PROTEINS"), "imdb-binary": ("IMDB-BINARY", "IMDB-BINARY"),
           "imdb-multi": ("IMDB-MULTI", "IMDB-MULTI")}
for _key, (_name, _label) in TU_SETS.items():
    _register(_key, _name, _label)
