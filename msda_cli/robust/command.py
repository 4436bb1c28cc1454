"""`msda robust`: run the requested measures on a stored run and store every number.

All settings and folders are checked before the model is loaded; all measures are computed
before anything is written, so an error midway leaves the store as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from msda_cli.checks import check_choice
from msda_cli.errors import MsdaError
from msda_cli.evaluation import check_subset
from msda_cli.metric_names import AUTOATTACK, PGD, ROBUST
from msda_cli.robust.attacks import check_attack, evaluate_attack
from msda_cli.robust.autoattack import evaluate_autoattack, torchattacks
from msda_cli.robust.corruptions import evaluate_corruptions
from msda_cli.robust.datasets import open_ood_set
from msda_cli.robust.deform import evaluate_deformations
from msda_cli.robust.imagenet_o import HENDRYCKS, OOD_PROTOCOLS, default_protocol
from msda_cli.robust.natural import evaluate_natural_adversarial
from msda_cli.robust.ood import evaluate_ood, imagenet_o_classes
from msda_cli.runs import load_run


@dataclass
class RobustRequest:
    attack: str | None = None
    eps: float = 8.0
    steps: int = 10
    step_size: float = 2.0
    restarts: int = 1
    source: str | None = None
    ood: str | None = None
    ood_protocol: str | None = None  # None: Hendrycks' for ImageNet-O, all-classes otherwise (robust.imagenet_o)
    natural_adversarial: str | None = None
    deform: bool = False
    corruptions: str | None = None
    n_examples: int | None = None
    batch_size: int = 256
    seed: int = 0
    data_dir: str | None = None

    def check(self) -> None:
        if not (self.attack or self.ood or self.natural_adversarial or self.deform or self.corruptions):
            raise MsdaError("name a measure: --attack fgsm|pgd|autoattack, --ood NAME|DIR, "
                            "--natural-adversarial DIR, --deform or --corruptions DIR")
        check_attack(self.attack, self.eps, self.steps, self.step_size, self.restarts)
        if self.source is not None and self.attack != PGD:
            raise MsdaError("--source crafts transfer attacks with PGD; add --attack pgd")
        if self.attack == AUTOATTACK:
            torchattacks()  # installed? (before the model is loaded)
        if self.ood_protocol is not None:
            if self.ood is None:
                raise MsdaError("--ood-protocol goes with --ood NAME|DIR")
            check_choice("--ood-protocol", self.ood_protocol, OOD_PROTOCOLS)
        check_subset(self.n_examples, self.batch_size)
        for flag, folder in (("--natural-adversarial", self.natural_adversarial), ("--corruptions", self.corruptions)):
            if folder is not None and not Path(folder).is_dir():
                raise MsdaError(f"{flag} {folder} is not a directory")


def run_robust(store, run_id: str, req: RobustRequest, device: str, log=print) -> tuple[str, list[tuple]]:
    """Compute every requested measure of `run_id`; returns (run id, metric rows) after storing them."""
    req.check()
    if req.source is not None and store.get_run(req.source).id == store.get_run(run_id).id:
        raise MsdaError(f"--source {req.source} is the attacked run itself: a transfer attack crafts on another run "
                        "(drop --source for white-box)")
    target = load_run(store, run_id, device=device, data_dir=req.data_dir)
    source = load_run(store, req.source, device=device, data_dir=req.data_dir) if req.source else None
    ood_set = open_ood_set(req.ood, target.info, root=req.data_dir) if req.ood else None
    if ood_set is not None and (req.ood_protocol or default_protocol(ood_set[1])) == HENDRYCKS:
        imagenet_o_classes(target.info.classes)  # a model without the 200 classes fails before any measure
    common = dict(n_examples=req.n_examples, batch_size=req.batch_size, seed=req.seed)
    rows: list[tuple] = []
    if req.attack == AUTOATTACK:
        rows += evaluate_autoattack(target.model, target.test_set, eps=req.eps, **common)
    elif req.attack:
        if source is not None and (source.info.num_classes != target.info.num_classes
                                   or source.info.classes != target.info.classes):
            raise MsdaError(f"source run {source.run.id} was trained on other classes "
                            f"({source.config.dataset}) than run {target.run.id} ({target.config.dataset})")
        # gray-box or black-box: evaluate_attack decides, by attacks.same_architecture
        rows += evaluate_attack(
            target.model, target.test_set, attack=req.attack, eps=req.eps, steps=req.steps,
            step_size=req.step_size, restarts=req.restarts, source_model=source.model if source else None,
            source_run=source.run.id if source else None, **common)
    if ood_set is not None:
        dataset, name = ood_set
        rows += evaluate_ood(target.model, target.test_set, dataset, name, protocol=req.ood_protocol,
                             model_classes=target.info.classes, **common)
    if req.natural_adversarial:
        rows += evaluate_natural_adversarial(
            target.model, target.info.classes, req.natural_adversarial, image_size=target.info.image_size,
            in_chans=target.info.in_chans, log=log, **common)
    if req.deform:
        rows += evaluate_deformations(target.model, target.test_set, **common)
    if req.corruptions:
        rows += evaluate_corruptions(target.model, req.corruptions, image_size=target.info.image_size,
                                     log=log, **common)
    store.add_metrics(target.run.id, ROBUST, rows)
    return target.run.id, rows
