"""Pretraining, fine-tuning, distillation and evaluation of Social-MAE (`socialmae_rt.training`).

- data/: dataset readers, the prepared cache, 4 s windows cut as the live pipeline cuts them;
- trainer.py: the one training loop (torchrun DDP, autocast, accumulation, exact resume, logs);
- pretrain_model.py, pretrain.py: MAE + contrastive pretraining in the released layout;
- finetune.py, distill.py, metrics.py: task heads, students, the paper's metrics;
- cli.py, recipes/: `socialmae-rt prepare-data | pretrain | finetune | distill | evaluate`.
"""
