"""Sources: camera (OpenCV), microphone (PyAudio), media files (PyAV)."""
