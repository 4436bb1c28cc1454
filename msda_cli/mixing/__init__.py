"""Every MSDA method by name: `build_mixer("gmix", alpha=0.5)`; see `base.py` for the contract.

Methods and hyperparameters (defaults), in registration order; every method also takes
`smoothing` (0.0), every mask method `mask_mode` (`batch`: one mask per batch | `sample`: one per
sample); its default is what the authors' code does: `sample` for cutout, dcutmix and
saliency-dcutmix, else `batch`. Each is registered with its display label:
`@register_mixer("cutmix", label="CutMix")`.

  vanilla            no mixing
  mixup              alpha=1.0                          also tabular; mask_mode: one λ per batch/sample
  cutmix             alpha=1.0, prob=1.0                 prob: the probability a batch is mixed at all
  mixup-cutmix       alpha=1.0, cutmix_alpha=1.0, q=0.5  Mixup with probability q, else CutMix
  cutout             size=0.5                           box side as a fraction of the image side
  resizemix          scale_min=0.1, scale_max=0.8
  saliencymix        alpha=1.0
  hmix               alpha=1.0, r=0.5, gamma=None       r fixed, or r ~ Beta(γ, γ) when gamma is set
  gmix               alpha=0.5
  mixupe             alpha=1.0, eta=0.001, variant=paper, erm=False   or variant code (needs the model: `loss`)
  dmixup             k=3, alpha=1.0                     also tabular; φ per sample
  dcutmix            k=3, alpha=1.0, prob=1.0
  saliency-dcutmix   k=3, alpha=1.0, prob=1.0
  manifold-mixup     alpha=2.0, layers=2                mixes the input or a stage's output (needs the model)
  fmix               alpha=1.0, decay_power=3.0
  puzzlemix          alpha=1.0, beta=1.2, gamma=0.5, eta=0.2, neigh_size=4, n_labels=3, transport=True, t_eps=0.8,
                     t_size=4, adv_p=0.0, adv_eps=10.0, clean_lam=0.0   saliency pass, graph cut, transport (model)
  comixup            alpha=2.0, beta=0.32, gamma=1.0, eta=0.05, omega=0.001, thres=0.83, thres_type=hard,
                     block_num=4, part=20, niter=4, set_resolve=True, clean_lam=1.0   batch-level graph cuts (model)

`method_hparams(name)` lists them programmatically (`tests/test_names.py` checks this list).
"""

from __future__ import annotations

from msda_cli.mixing.base import LossOutput, Mixer, MixOutput, one_hot, soft_cross_entropy  # noqa: F401
from msda_cli.registry import Registry

MIXERS = Registry("method")


def register_mixer(name: str, label: str):
    """Class decorator: register a Mixer subclass under `name`, shown in reports as `label`."""

    def decorator(cls):
        cls.name = name
        MIXERS.register(name, label=label)(cls)
        return cls

    return decorator


def method_hparams(name: str) -> dict:
    """The hyperparameters of method `name` with their defaults."""
    import inspect

    params = inspect.signature(MIXERS.lookup(name).__init__).parameters
    return {k: p.default for k, p in params.items() if k != "self" and p.kind == p.POSITIONAL_OR_KEYWORD}


def build_mixer(name: str, **hparams) -> Mixer:
    """Build method `name`; unknown names, unknown hyperparameters and bad values raise MsdaError."""
    from msda_cli.errors import MsdaError

    cls = MIXERS.lookup(name)
    valid = method_hparams(name)
    unknown = sorted(set(hparams) - set(valid))
    if unknown:
        raise MsdaError(
            f"method {name!r} has no hyperparameter {', '.join(map(repr, unknown))}; valid: {', '.join(valid)}"
        )
    return cls(**hparams)


# importing the family modules registers the methods, in this order: the order of a report's rows
from msda_cli.mixing import vanilla, mixup, cutmix, hmix, mixupe, kimage, manifold, fmix  # noqa: E402,F401
from msda_cli.mixing import puzzlemix, comixup  # noqa: E402,F401
