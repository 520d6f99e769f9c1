"""Face detection (MediaPipe), IoU tracking with stable ids, square crops."""

from socialmae_rt.faces.crop import DEFAULT_CROP_SCALE, DEFAULT_CROP_SIZE, square_crop
from socialmae_rt.faces.detector import FaceDetector, FaceDetectorConfig
from socialmae_rt.faces.tracker import FaceTracker, Track, TrackerConfig

__all__ = [
    "DEFAULT_CROP_SCALE",
    "DEFAULT_CROP_SIZE",
    "FaceDetector",
    "FaceDetectorConfig",
    "FaceTracker",
    "Track",
    "TrackerConfig",
    "square_crop",
]
