"""The perception tasks and the labels of their outputs, in record order: the names every layer shares."""

from __future__ import annotations

PERCEPTION_TASKS = ("emotion", "laughter", "personality")  # record fields, in record order
EMOTION_LABELS = ("anger", "disgust", "fear", "happy", "neutral", "sad")
PERSONALITY_TRAITS = ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")
LAUGHING_LABEL = "laughter"  # the class of a multi-class laughter head that means "laughing"
