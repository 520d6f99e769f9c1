"""socialmae_rt: real-time Social-MAE perception (emotion, laughter, personality) for social robots.

Importing the package imports nothing heavy; see socialmae_rt.model and socialmae_rt.features.
"""

__version__ = "0.1.0"
