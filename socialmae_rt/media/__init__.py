"""Generated media (the sample clip, a two-person conversation, the held-out suite) and the A/V mp4 recorder."""
