"""The authors' released checkpoints and what their heads mean: one table, with the reasoning.

Four files were released with the paper (HuBohy/SocialMAE README, which links each on Google
Drive; the file ids are below): the pretrained encoder with its MAE decoder, and three copies
fine-tuned on one task each. Every fine-tuned head is
`mlp_head` = LayerNorm + Linear(768, n_class); its width is in the file (`mlp_head.1.weight`),
its output order is not. The reference fine-tuning loader numbers the classes in the order
`glob` lists the class folders of each split, unsorted, so the order depends on the file system
the authors trained on. Personality and laughter have no loader code in the release at all.

So every output order below is a documented *assumption* (`assumed=True`), printed at import and
recorded in the imported checkpoint; `weights import --labels ...` states the real one when a
user knows it. Nothing downstream guesses again: the imported head is rewritten into the order
the pipeline reads (an exact permutation / selection of the final Linear's rows).
"""

from __future__ import annotations

from dataclasses import dataclass

from socialmae_rt.tasks import EMOTION_LABELS, LAUGHING_LABEL, PERCEPTION_TASKS, PERSONALITY_TRAITS

AUTHORS_README = "https://github.com/HuBohy/SocialMAE#model-checkpoints"
ENCODER_TASK = "encoder"  # the pretrained checkpoint: an encoder for fine-tuning/distillation, no head
TASKS = (*PERCEPTION_TASKS, ENCODER_TASK)

# CREMA-D file names carry these codes; alphabetical by code is alphabetical by name too.
CREMA_D_CODES = {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
# The key order of ChaLearn First Impressions' annotation_*.pkl files (what iterating them gives).
FIRST_IMPRESSIONS_PICKLE_ORDER = ("extraversion", "neuroticism", "agreeableness", "conscientiousness",
                                  "interview", "openness")
INTERVIEW = "interview"


@dataclass(frozen=True)
class HeadMeaning:
    """How a released head of one task is read, and why."""

    task: str
    pipeline_labels: tuple[str, ...] | None  # what the pipeline reads, in order (None: kept as imported)
    default_source_labels: dict[int, tuple[str, ...]]  # head width -> assumed output order
    reasoning: str


HEAD_MEANINGS: dict[str, HeadMeaning] = {
    "emotion": HeadMeaning(
        "emotion",
        EMOTION_LABELS,
        {6: EMOTION_LABELS},
        "CREMA-D's six classes in alphabetical order (ANG, DIS, FEA, HAP, NEU, SAD). The reference numbers "
        "classes by unsorted glob order of its class folders; alphabetical is what a sorted listing gives "
        "and what the project has always read. Assumed.",
    ),
    "personality": HeadMeaning(
        "personality",
        PERSONALITY_TRAITS,
        {5: tuple(t for t in FIRST_IMPRESSIONS_PICKLE_ORDER if t != INTERVIEW), 6: FIRST_IMPRESSIONS_PICKLE_ORDER},
        "The Big Five in the key order of the First Impressions annotation pickle (extraversion, "
        "neuroticism, agreeableness, conscientiousness, [interview,] openness), the order a loader "
        "iterating that file produces. The release has no First Impressions loader. Assumed. A sixth "
        "'interview' output is dropped (the records carry the five traits).",
    ),
    "laughter": HeadMeaning(
        "laughter",
        None,
        {1: (LAUGHING_LABEL,), 2: ("no_laughter", LAUGHING_LABEL), 3: ("neutral", "smile", LAUGHING_LABEL)},
        "NDC-ME laughter/smile. One output: a sigmoid logit of laughing. Two: not laughing, laughing. "
        "Three: neutral, smile, laughter (the smile/laugh split of the authors' NDC-ME work). The release "
        "has no NDC-ME loader and numbers classes by unsorted folder order. Assumed: check which class "
        "means laughing with --laughing-class or --labels.",
    ),
}


@dataclass(frozen=True)
class ReleasedCheckpoint:
    """One of the authors' files."""

    name: str
    task: str
    fine_tuned_on: str
    outputs: str  # what the head outputs, in which order (as this project reads it)
    batch: int  # fine-tuning (or pretraining) batch size, from the authors' table
    drive_id: str  # the Google Drive file id the authors' README links
    url: str | None = None  # another direct link, where one is known (the Drive file is the default)
    size_bytes: int | None = None  # expected file size, once known
    sha256: str | None = None  # expected hash, once known

    @property
    def file_name(self) -> str:
        return f"{self.name}.pth"

    @property
    def link(self) -> str:
        return self.url or f"https://drive.google.com/file/d/{self.drive_id}/view"


RELEASED: dict[str, ReleasedCheckpoint] = {c.name: c for c in (
    ReleasedCheckpoint("socialmae-pretrained", ENCODER_TASK, "- (VoxCeleb2 pretraining, with decoder)",
                       "no head: encoder (+ MAE decoder) for fine-tuning or distillation", 36,
                       drive_id="1s2giy3_tQKL_cISiYcN5lBy_ami6Dc0n"),
    ReleasedCheckpoint("socialmae-ft-cremad", "emotion", "CREMA-D",
                       "6 logits: " + ", ".join(EMOTION_LABELS) + " (assumed order)", 12,
                       drive_id="1WrqznBLZ0G8HRe6POt9E4w9zVNzbfWA_"),
    ReleasedCheckpoint("socialmae-ft-firstimpressions", "personality", "ChaLearn First Impressions",
                       "Big Five regression: " + ", ".join(HEAD_MEANINGS["personality"].default_source_labels[5])
                       + " (assumed order; reordered to O, C, E, A, N at import)", 8,
                       drive_id="1t8rvCVLvoLoQG85N7LToHZPF6vy9HQB2"),
    ReleasedCheckpoint("socialmae-ft-ndcme", "laughter", "NDC-ME",
                       "laughter/smile classes; laughing = the class named 'laughter' (assumed order, see import)", 8,
                       drive_id="1bjzz1oOF0vdvQ8fV3y5CU-Zxne1UeHpz"),
)}


def check_task(task: str, where: str = "") -> str:
    if task not in TASKS:
        raise ValueError(f"{where}unknown task {task!r}; expected one of {', '.join(TASKS)}")
    return task
