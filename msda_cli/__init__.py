"""msda: an experiment runner for mixed-sample data augmentation research."""

__version__ = "0.1.0"
