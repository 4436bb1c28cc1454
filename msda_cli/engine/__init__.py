"""Training, evaluation and checkpoints (read `train.py` top to bottom)."""
