"""Every MSDA method by name: `build_mixer("gmix", alpha=0.5)`; see `base.py` for the contract."""

from __future__ import annotations

from msda_cli.mixing.base import LossOutput, Mixer, MixOutput, soft_cross_entropy  # noqa: F401
from msda_cli.registry import Registry

MIXERS = Registry("method")


def register_mixer(name: str):
    """Class decorator: register a Mixer subclass under `name`."""

    def decorator(cls):
        cls.name = name
        MIXERS.register(name)(cls)
        return cls

    return decorator


def build_mixer(name: str, **hparams) -> Mixer:
    """Build method `name`; unknown names, unknown hyperparameters and bad values raise MsdaError."""
    cls = MIXERS.lookup(name)
    try:
        return cls(**hparams)
    except TypeError as e:  # unexpected keyword
        import inspect

        from msda_cli.errors import MsdaError

        valid = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "kwargs")]
        raise MsdaError(f"method {name!r} got an unknown hyperparameter ({e}); valid: {', '.join(valid)}") from None


from msda_cli.mixing import vanilla  # noqa: E402,F401  (registers the methods)
