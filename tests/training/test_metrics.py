"""The paper's metrics against hand-worked examples."""

import numpy as np
import pytest

from socialmae_rt.training.metrics import binary_metrics, classification_metrics, regression_metrics, task_metrics


def one_hot_logits(predicted, k):
    logits = np.zeros((len(predicted), k))
    logits[np.arange(len(predicted)), predicted] = 1.0
    return logits


def test_classification_f1_balanced_accuracy_and_confusion():
    truth = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 0, 1, 1, 2, 2])
    m = classification_metrics(truth, one_hot_logits(predicted, 3), ["a", "b", "c"])
    # class a: P 2/2 R 2/3 -> F1 0.8; b: P 1/2 R 1/2 -> 0.5; c: P 1/2 R 1/1 -> 2/3
    assert m["f1_per_class"] == pytest.approx({"a": 0.8, "b": 0.5, "c": 2 / 3})
    assert m["f1_macro"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["confusion"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]


def test_classes_absent_from_the_truth_do_not_drag_the_means():
    m = classification_metrics(np.array([0, 0]), one_hot_logits([0, 0], 3), ["a", "b", "c"])
    assert m["f1_macro"] == 1.0 and m["balanced_accuracy"] == 1.0


def test_binary_f1_from_logits():
    truth = np.array([1, 1, 0, 0])
    logits = np.array([3.0, -3.0, 3.0, -3.0])  # TP, FN, FP, TN
    m = binary_metrics(truth, logits, ["laughter"])
    assert m["per_label"]["laughter"]["f1"] == pytest.approx(0.5)
    assert m["balanced_accuracy"] == pytest.approx(0.5)


def test_regression_is_one_minus_mae_per_trait_with_clipping():
    truth = np.array([[0.5, 0.0], [0.5, 1.0]])
    predicted = np.array([[0.7, -1.0], [0.4, 1.5]])  # clipped to [0, 1] first
    m = regression_metrics(truth, predicted, ["o", "c"])
    assert m["accuracy_per_trait"] == pytest.approx({"o": 1 - 0.15, "c": 1.0})
    assert m["mean_accuracy"] == pytest.approx((0.85 + 1.0) / 2)


def test_unknown_kind_is_named():
    with pytest.raises(ValueError, match="unknown task kind 'ordinal'"):
        task_metrics("ordinal", np.zeros(1), np.zeros((1, 1)), ["x"])
