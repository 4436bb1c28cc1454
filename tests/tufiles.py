"""TUDatasets in the TU file format, small: for the tests that need a graph folder."""

from __future__ import annotations

from pathlib import Path

from msda_cli.data.tu import TU_SETS


def write_tu(root: Path, name: str, graphs: int = 20, node_labels: bool = True, classes: int = 2,
             raw: bool = True) -> Path:
    """`graphs` small graphs (graph g: a ring of 3 + g nodes, plus a chord from node 0 when g is odd),
    graph labels -1/1 (2 classes, as MUTAG writes them) or 1..classes, node labels 0..2 where asked;
    under `<root>/<name>/raw/` (TUDataset's layout) or `<root>/<name>/` (the unzipped archive)."""
    folder = root / name / "raw" if raw else root / name
    folder.mkdir(parents=True, exist_ok=True)
    edges, indicator, labels, node_tags = [], [], [], []
    first = 1
    for g in range(graphs):
        n = 3 + g
        pairs = [(k, (k + 1) % n) for k in range(n)] + ([(0, 2)] if g % 2 and n > 3 else [])
        for a, b in pairs:  # both directions, 1-based, as the TU files list them
            edges += [(first + a, first + b), (first + b, first + a)]
        indicator += [g + 1] * n
        node_tags += [(g + k) % 3 for k in range(n)]
        c = g % classes
        labels.append((-1, 1)[c] if classes == 2 else c + 1)
        first += n
    (folder / f"{name}_A.txt").write_text("".join(f"{a}, {b}\n" for a, b in edges))
    (folder / f"{name}_graph_indicator.txt").write_text("".join(f"{g}\n" for g in indicator))
    (folder / f"{name}_graph_labels.txt").write_text("".join(f"{c}\n" for c in labels))
    if node_labels:
        (folder / f"{name}_node_labels.txt").write_text("".join(f"{t}\n" for t in node_tags))
    return root


def write_tu_set(key: str, root: Path) -> Path:
    """The data set registered as `key` (mutag ... imdb-multi), as its files name it."""
    name = TU_SETS[key][0]
    social = key.startswith("imdb")
    return write_tu(root, name, node_labels=not social, classes=3 if key == "imdb-multi" else 2)
