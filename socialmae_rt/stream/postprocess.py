"""Raw head outputs -> probabilities, smoothing per face, laughter onset/offset events.

Head meanings by name: `emotion` softmax over the six CREMA-D classes; `laughter` sigmoid of one
logit, or, for a softmax head of several classes, the probability of the class labelled
`laughter` (the second of two when the checkpoint names none); `personality` five regression
values, clipped to [0, 1] like the ChaLearn annotations. A head the model lacks (e.g. a released emotion-only
checkpoint) yields no value: records carry null, never a made-up number.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from socialmae_rt.messages import seconds_to_ns
from socialmae_rt.tasks import EMOTION_LABELS, LAUGHING_LABEL, PERSONALITY_TRAITS


@dataclass
class PostprocessConfig:
    """Smoothing factors are the weight of the previous value (0 = no smoothing)."""

    emotion_labels: tuple[str, ...] = EMOTION_LABELS
    emotion_smoothing: float = 0.5
    laughter_smoothing: float = 0.3
    personality_smoothing: float = 0.9  # traits change slowly: average over many windows
    laughter_on: float = 0.6  # onset when the smoothed probability stays >= this ...
    laughter_min_duration_s: float = 0.5  # ... for at least this long (window-end time)
    laughter_off: float = 0.4  # offset when it falls below this
    laughter_refractory_s: float = 1.0  # no new onset this soon after an offset

    def __post_init__(self) -> None:
        self.emotion_labels = tuple(self.emotion_labels)
        for name in ("emotion_smoothing", "laughter_smoothing", "personality_smoothing"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"PostprocessConfig.{name} must be in [0, 1), got {getattr(self, name)}")
        if not 0.0 < self.laughter_off <= self.laughter_on < 1.0:
            raise ValueError(
                "PostprocessConfig needs 0 < laughter_off <= laughter_on < 1, "
                f"got laughter_off={self.laughter_off}, laughter_on={self.laughter_on}"
            )
        for name in ("laughter_min_duration_s", "laughter_refractory_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"PostprocessConfig.{name} must be >= 0, got {getattr(self, name)}")


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def laughing_class(size: int, labels: tuple[str, ...] | None) -> int | None:
    """Which output of a laughter head of `size` outputs means laughing (None: one sigmoid logit)."""
    if labels is not None:
        if LAUGHING_LABEL not in labels:
            raise ValueError(f"laughter head labels {list(labels)} name no {LAUGHING_LABEL!r} class; "
                             "re-import the checkpoint saying which class means laughing")
        return labels.index(LAUGHING_LABEL) if size > 1 else None
    if size == 1:
        return None
    if size == 2:
        return 1
    raise ValueError(f"laughter head has {size} outputs but the checkpoint does not say which one means laughing; "
                     "import it with `socialmae-rt weights import --task laughter --laughing-class N`")


def laughter_probability(logits: np.ndarray, laughing: int | None = -1) -> np.ndarray:
    """[B, 1] sigmoid, or [B, K] softmax taking class `laughing` (default: as laughing_class) -> [B]."""
    if laughing == -1:
        laughing = laughing_class(logits.shape[-1], None)
    if laughing is None:
        if logits.shape[-1] != 1:
            raise ValueError(f"a sigmoid laughter head has 1 output, got {logits.shape[-1]}")
        return 1.0 / (1.0 + np.exp(-logits[..., 0]))
    return softmax(logits)[..., laughing]


def ema(previous: np.ndarray | float | None, value, weight: float):
    return value if previous is None else weight * previous + (1.0 - weight) * value


class LaughterEventKind(str, enum.Enum):
    ONSET = "laughter_onset"
    OFFSET = "laughter_offset"


@dataclass(frozen=True)
class LaughterEvent:
    kind: LaughterEventKind
    face_id: int | None
    time_ns: int  # estimated onset time, or the offset time
    window_end_ns: int  # the window that decided it
    probability: float


class LaughterState(str, enum.Enum):
    IDLE = "idle"
    PENDING = "pending"  # above the onset threshold, not yet for long enough
    LAUGHING = "laughing"
    REFRACTORY = "refractory"


class LaughterStateMachine:
    """Hysteresis on a probability stream: onset after `min_duration` above `on`, offset below `off`.

    The onset time reported is the end of the first window of the run above `on`: the earliest
    window that already heard the laugh.
    """

    def __init__(self, config: PostprocessConfig, face_id: int | None = None) -> None:
        self.config = config  # read at every update, so threshold changes apply at run time
        self.face_id = face_id
        self.reset()

    def reset(self) -> None:
        self.state = LaughterState.IDLE
        self.run_start_ns: int | None = None
        self.refractory_until_ns = 0

    @property
    def laughing(self) -> bool:
        return self.state is LaughterState.LAUGHING

    def update(self, probability: float, time_ns: int) -> list[LaughterEvent]:
        on, off = self.config.laughter_on, self.config.laughter_off
        if self.state is LaughterState.REFRACTORY and time_ns >= self.refractory_until_ns:
            self.state = LaughterState.IDLE
        if self.state is LaughterState.LAUGHING:
            if probability < off:
                self.state = LaughterState.REFRACTORY
                self.refractory_until_ns = time_ns + seconds_to_ns(self.config.laughter_refractory_s)
                return [LaughterEvent(LaughterEventKind.OFFSET, self.face_id, time_ns, time_ns, probability)]
            return []
        if self.state is LaughterState.REFRACTORY:
            return []
        if probability < on:
            self.state, self.run_start_ns = LaughterState.IDLE, None
            return []
        if self.state is LaughterState.IDLE:
            self.state, self.run_start_ns = LaughterState.PENDING, time_ns
        if time_ns - self.run_start_ns >= seconds_to_ns(self.config.laughter_min_duration_s):
            self.state = LaughterState.LAUGHING
            return [LaughterEvent(LaughterEventKind.ONSET, self.face_id, self.run_start_ns, time_ns, probability)]
        return []


@dataclass
class FacePerception:
    """Smoothed outputs for one face (or the audio-only stream) after one window."""

    emotion: dict[str, float] | None
    laughter_probability: float | None
    laughing: bool | None
    personality: dict[str, float] | None
    events: list[LaughterEvent] = field(default_factory=list)
    window_personality: dict[str, float] | None = None  # this window's alone, unsmoothed (per-person means)


class _FaceState:
    def __init__(self, config: PostprocessConfig, face_id: int | None) -> None:
        self.emotion: np.ndarray | None = None
        self.laughter: float | None = None
        self.personality: np.ndarray | None = None
        self.machine = LaughterStateMachine(config, face_id)


class Postprocessor:
    """Per-face smoothing and laughter events; `forget(face_id)` when a face leaves."""

    def __init__(self, config: PostprocessConfig | None = None) -> None:
        self.config = config or PostprocessConfig()
        self._faces: dict[int | None, _FaceState] = {}
        self._laughing: int | None = -1  # output index of "laughing" (None: sigmoid); set by check_heads

    def reset(self) -> None:
        self._faces.clear()

    def forget(self, face_id: int | None) -> None:
        self._faces.pop(face_id, None)

    def check_heads(self, head_sizes: dict[str, int], head_labels: dict[str, list[str]] | None = None) -> None:
        """Refuse a model whose heads cannot mean what their names say; `head_labels` (output names
        recorded with the checkpoint) must agree with the labels the outputs are read as."""
        labels = {name: tuple(values) for name, values in (head_labels or {}).items()}
        emotion = head_sizes.get("emotion")
        if emotion is not None and emotion != len(self.config.emotion_labels):
            raise ValueError(
                f"emotion head has {emotion} outputs but {len(self.config.emotion_labels)} labels are configured "
                f"({', '.join(self.config.emotion_labels)})"
            )
        if "emotion" in labels and labels["emotion"] != self.config.emotion_labels:
            raise ValueError(f"the checkpoint's emotion head outputs {list(labels['emotion'])}, but they would be "
                             f"read as {list(self.config.emotion_labels)}")
        if head_sizes.get("personality") not in (None, len(PERSONALITY_TRAITS)):
            raise ValueError(f"personality head must have 5 outputs (O, C, E, A, N), got {head_sizes['personality']}")
        if "personality" in labels and labels["personality"] != PERSONALITY_TRAITS:
            raise ValueError(f"the checkpoint's personality head outputs {list(labels['personality'])}, but they "
                             f"would be read as {list(PERSONALITY_TRAITS)}")
        if "laughter" in head_sizes:
            self._laughing = laughing_class(head_sizes["laughter"], labels.get("laughter"))

    def update(self, face_id: int | None, heads: dict[str, np.ndarray], window_end_ns: int) -> FacePerception:
        """`heads`: one window's raw outputs, name -> [size]."""
        cfg = self.config
        state = self._faces.setdefault(face_id, _FaceState(cfg, face_id))
        emotion = personality = window_personality = laughter = laughing = None
        events: list[LaughterEvent] = []
        if "emotion" in heads:
            state.emotion = ema(state.emotion, softmax(heads["emotion"]), cfg.emotion_smoothing)
            emotion = dict(zip(cfg.emotion_labels, map(float, state.emotion)))
        if "laughter" in heads:
            state.laughter = ema(state.laughter, float(laughter_probability(heads["laughter"][None], self._laughing)[0]), cfg.laughter_smoothing)
            laughter = state.laughter
            events = state.machine.update(laughter, window_end_ns)
            laughing = state.machine.laughing
        if "personality" in heads:
            clipped = np.clip(heads["personality"], 0.0, 1.0)
            window_personality = dict(zip(PERSONALITY_TRAITS, map(float, clipped)))
            state.personality = ema(state.personality, clipped, cfg.personality_smoothing)
            personality = dict(zip(PERSONALITY_TRAITS, map(float, state.personality)))
        return FacePerception(emotion, laughter, laughing, personality, events, window_personality)
