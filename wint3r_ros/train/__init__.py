"""Training and evaluation: simulated online windows, losses, the training loop and the
evaluation protocol of docs/EVALUATION.md."""
