"""The released checkpoints and task bundles: `socialmae-rt weights list | download | import`."""
