"""Pretraining, fine-tuning, distillation and evaluation of Social-MAE.

Imported as `socialmae_rt.training`. Arrives with the training issue.
"""
