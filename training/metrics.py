"""The paper's metrics: F1 and balanced accuracy for classification, 1 - MAE for personality.

Plain numpy on collected predictions, so training, `socialmae-rt evaluate` and tests share them.
"""

from __future__ import annotations

import numpy as np


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """[K, K] counts; row = true class, column = predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(truth, int), np.asarray(predicted, int)), 1)
    return matrix


def _per_class_f1(matrix: np.ndarray) -> np.ndarray:
    tp = np.diag(matrix).astype(float)
    predicted = matrix.sum(axis=0)
    actual = matrix.sum(axis=1)
    denominator = predicted + actual
    return np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)


def classification_metrics(truth: np.ndarray, logits: np.ndarray, labels: list[str]) -> dict:
    """accuracy, macro F1, weighted F1, balanced accuracy (mean recall over classes present), confusion."""
    truth = np.asarray(truth, int)
    predicted = np.asarray(logits).argmax(axis=1)
    matrix = confusion_matrix(truth, predicted, len(labels))
    f1 = _per_class_f1(matrix)
    actual = matrix.sum(axis=1)
    present = actual > 0
    recall = np.divide(np.diag(matrix), actual, out=np.zeros(len(labels)), where=present)
    return {
        "accuracy": float((predicted == truth).mean()) if truth.size else 0.0,
        "f1_macro": float(f1[present].mean()) if present.any() else 0.0,
        "f1_weighted": float((f1 * actual).sum() / actual.sum()) if actual.sum() else 0.0,
        "balanced_accuracy": float(recall[present].mean()) if present.any() else 0.0,
        "f1_per_class": {label: float(v) for label, v in zip(labels, f1)},
        "confusion": matrix.tolist(),
    }


def binary_metrics(truth: np.ndarray, logits: np.ndarray, labels: list[str], threshold: float = 0.5) -> dict:
    """Independent yes/no labels (laughter, smile): F1 and balanced accuracy per label, macro means."""
    truth = np.asarray(truth, float).reshape(len(truth), -1) >= 0.5
    probability = 1.0 / (1.0 + np.exp(-np.asarray(logits, float).reshape(truth.shape)))
    predicted = probability >= threshold
    per_label = {}
    for k, label in enumerate(labels):
        matrix = confusion_matrix(truth[:, k], predicted[:, k], 2)
        f1 = _per_class_f1(matrix)[1]
        actual = matrix.sum(axis=1)
        recalls = [matrix[c, c] / actual[c] for c in range(2) if actual[c] > 0]
        per_label[label] = {"f1": float(f1), "balanced_accuracy": float(np.mean(recalls)) if recalls else 0.0}
    return {
        "f1_macro": float(np.mean([v["f1"] for v in per_label.values()])),
        "balanced_accuracy": float(np.mean([v["balanced_accuracy"] for v in per_label.values()])),
        "accuracy": float((predicted == truth).mean()) if truth.size else 0.0,
        "per_label": per_label,
    }


def regression_metrics(truth: np.ndarray, predicted: np.ndarray, labels: list[str]) -> dict:
    """1 - MAE per trait (values in [0, 1], predictions clipped to it as the live pipeline does) and mean."""
    truth = np.asarray(truth, float).reshape(len(truth), -1)
    predicted = np.clip(np.asarray(predicted, float).reshape(truth.shape), 0.0, 1.0)
    accuracy = 1.0 - np.abs(truth - predicted).mean(axis=0)
    return {
        "mean_accuracy": float(accuracy.mean()),
        "accuracy_per_trait": {label: float(v) for label, v in zip(labels, accuracy)},
        "mae": float(np.abs(truth - predicted).mean()),
    }


# The one number per task kind that picks the best checkpoint (higher is better).
KEY_METRIC = {"classification": "f1_macro", "binary": "f1_macro", "multilabel": "f1_macro",
              "regression": "mean_accuracy"}


def task_metrics(kind: str, truth: np.ndarray, outputs: np.ndarray, labels: list[str]) -> dict:
    if kind == "classification":
        return classification_metrics(truth, outputs, labels)
    if kind in ("binary", "multilabel"):
        return binary_metrics(truth, outputs, labels)
    if kind == "regression":
        return regression_metrics(truth, outputs, labels)
    raise ValueError(f"unknown task kind {kind!r}; expected one of {', '.join(KEY_METRIC)}")
