"""Datasets for training: readers, the prepared cache, 4 s windows as the live pipeline cuts them.

    items = read_crema_d("/data/CREMA-D", split=SplitConfig())        # ClipItems with labels, splits
    report = prepare_data(items, "cache/crema_d", PrepareConfig(crop="full"))  # decode once
    train = WindowDataset("cache/crema_d", "train", ["emotion"])      # random 4 s windows
    loader = DataLoader(train, batch_size=8, collate_fn=collate)

Names load on first use, so reading a manifest does not import torch or MediaPipe.
"""

from socialmae_rt.util.lazy import lazy_exports

_HOMES = {
    # tasks
    "TaskSpec": "tasks",
    "TASK_KINDS": "tasks",
    "KNOWN_TASKS": "tasks",
    "EMOTION": "tasks",
    "LAUGHTER": "tasks",
    "SMILE_LAUGHTER": "tasks",
    "PERSONALITY": "tasks",
    "get_task": "tasks",
    "resolve_tasks": "tasks",
    # clip lists and readers
    "ClipItem": "items",
    "ItemList": "items",
    "LabelMismatchError": "items",
    "check_items": "items",
    "read_crema_d": "crema_d",
    "read_first_impressions": "first_impressions",
    "load_annotations": "first_impressions",
    "read_voxceleb2": "voxceleb",
    "read_video_folder": "folder",
    "read_manifest": "manifest",
    "read_ndc_me": "manifest",
    "SplitConfig": "splits",
    "speaker_split": "splits",
    "assign_speaker_splits": "splits",
    # prepared cache
    "PrepareConfig": "prepare",
    "PrepareReport": "prepare",
    "prepare_data": "prepare",
    "IndexEntry": "cache",
    "read_index": "cache",
    "load_clip": "cache",
    # windows
    "WindowDataset": "dataset",
    "collate": "dataset",
    # generated data
    "SyntheticConfig": "synthetic",
    "SyntheticDataset": "synthetic",
    "make_synthetic_dataset": "synthetic",
    "write_synthetic_clip": "synthetic",
    "synthetic_task": "synthetic",
}

__all__ = sorted(_HOMES)
__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
