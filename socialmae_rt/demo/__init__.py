"""Live webcam demo: overlay, recording and the demo loop."""
