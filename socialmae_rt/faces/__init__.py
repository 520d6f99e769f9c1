"""Face detection (MediaPipe), IoU tracking with stable ids, square crops."""
