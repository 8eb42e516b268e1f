"""radtl.engines: the study's metrics, batch preparation and handlers on MONAI's Ignite engines."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from ignite.engine import Engine
from monai.data import MetaTensor
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.handlers import EarlyStopHandler, ValidationHandler, stopping_fn_from_metric
from PIL import Image
from sklearn.metrics import f1_score

from radtl.engines import (
    Accuracy,
    ClassificationReport,
    MacroF1,
    MetricsWriter,
    PredictionWriter,
    PrepareBatch,
    RegressionReport,
    ReportError,
    TrainingHistory,
    class_indices,
    classification_scores,
    confusion_matrix,
    per_class_scores,
)


def _output(preds, labels):
    return [{"pred": torch.tensor(p, dtype=torch.float32), "label": torch.tensor(y)} for p, y in zip(preds, labels)]


def test_class_indices_argmax_for_probabilities_threshold_for_one_probability():
    pred, label = class_indices(_output([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1]], [1, 2]))
    assert pred.tolist() == [1, 0] and label.tolist() == [1, 2]
    pred, label = class_indices(_output([[0.2], [0.5], [0.9]], [[0.0], [1.0], [1.0]]))
    assert pred.tolist() == [0, 1, 1] and label.tolist() == [0, 1, 1]


def test_macro_f1_is_scikit_learns_macro_f1_over_the_epoch():
    metric = MacroF1()
    batches = [([[0.9, 0.1], [0.2, 0.8]], [0, 0]), ([[0.3, 0.7], [0.6, 0.4]], [1, 1])]
    metric.reset()
    for preds, labels in batches:
        metric.update(class_indices(_output(preds, labels)))
    assert metric.compute() == pytest.approx(f1_score([0, 0, 1, 1], [0, 1, 1, 0], average="macro"))


def test_accuracy_counts_correct_classes():
    metric = Accuracy()
    metric.reset()
    metric.update(class_indices(_output([[0.9], [0.1], [0.8], [0.7]], [[1.0], [0.0], [0.0], [1.0]])))
    assert metric.compute() == 0.75


def test_classification_scores_are_accuracy_and_macro_f1_with_absent_classes_scoring_zero():
    true, predicted = torch.tensor([0, 0, 1, 2]), torch.tensor([0, 1, 1, 1])  # class 2 never predicted: its F1 is 0
    assert classification_scores(true, predicted, prefix="knn5_") == {
        "knn5_accuracy": 0.5,
        "knn5_f1": pytest.approx(f1_score(true, predicted, average="macro", zero_division=0)),
    }
    assert classification_scores([1, 1], [1, 1]) == {"accuracy": 1.0, "f1": 1.0}


def test_the_epoch_metrics_and_the_probes_share_one_accuracy_and_f1():
    from radtl.evaluation.probes import probe

    features = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    labels = torch.tensor([0, 0, 1, 1])
    scores = probe((features, labels), (features, torch.tensor([0, 1, 1, 1])), ks=(1,))
    expected = classification_scores([0, 1, 1, 1], [0, 0, 1, 1])
    assert (scores["knn1_accuracy"], scores["knn1_f1"]) == (expected["accuracy"], expected["f1"])
    for metric, key in ((Accuracy(), "accuracy"), (MacroF1(), "f1")):
        metric.reset()
        metric.update((torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 1, 1])))
        assert metric.compute() == expected[key]


def test_prepare_batch_passes_extra_inputs_and_channels_last():
    batch = {"image": torch.zeros(2, 3, 8, 8), "label": torch.tensor([1.0, 2.0]), "sex": torch.tensor([1.0, 0.0])}
    image, label, args, kwargs = PrepareBatch(extra_keys=["sex"], channels_last=True)(batch)
    assert image.is_contiguous(memory_format=torch.channels_last)
    assert args[0].tolist() == [1.0, 0.0] and kwargs == {}
    with pytest.raises(KeyError, match="sex"):
        PrepareBatch(extra_keys="sex")({"image": batch["image"]})
    image, label = PrepareBatch()({"image": batch["image"]})
    assert label is None


class _Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(1, 2)

    def forward(self, x):
        return self.linear(x.mean(dim=(1, 2, 3))[:, None])


def _engines(tmp_path, max_epochs=30, patience=3):
    torch.manual_seed(0)
    images = torch.cat([torch.zeros(8, 1, 4, 4), torch.ones(8, 1, 4, 4)])
    data = [{"image": img, "label": int(i >= 8)} for i, img in enumerate(images)]
    loader = torch.utils.data.DataLoader(data, batch_size=4, shuffle=True)
    network = _Tiny()
    optimizer = torch.optim.SGD(network.parameters(), lr=0.5)
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"), val_data_loader=loader, network=network,
        postprocessing=lambda d: {**d, "pred": torch.softmax(d["pred"], dim=0)},
        key_val_metric={"f1": MacroF1()},
    )
    history = TrainingHistory(evaluator, tmp_path, key_metric="f1", optimizer=optimizer)
    trainer = SupervisedTrainer(
        device=torch.device("cpu"), max_epochs=max_epochs, train_data_loader=loader, network=network,
        optimizer=optimizer, loss_function=torch.nn.CrossEntropyLoss(),
        train_handlers=[ValidationHandler(validator=evaluator, interval=1), history],
    )
    EarlyStopHandler(patience=patience, score_function=stopping_fn_from_metric("f1"), trainer=trainer).attach(evaluator)
    return trainer, evaluator, network


def test_training_history_records_every_epoch_and_the_epoch_of_convergence(tmp_path):
    trainer, evaluator, _ = _engines(tmp_path)
    trainer.run()
    history = json.loads((tmp_path / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == list(range(1, history["epochs_run"] + 1))
    assert {"train_loss", "lr", "val_f1", "seconds"} <= set(history["epochs"][0])
    assert history["best_metric"] == 1.0
    assert history["epochs_to_convergence"] == history["best_epoch"] == evaluator.state.best_metric_epoch
    assert history["stopped_early"] and history["epochs_run"] == history["best_epoch"] + 3


def test_prediction_writer_names_classes_and_keeps_probabilities(tmp_path):
    writer = PredictionWriter(tmp_path, labels={"0": "normal", "1": "covid"})
    assert writer.row("a.dcm", torch.tensor([0.8])) == {"image": "a.dcm", "prediction": "covid", "probability_covid": 0.8}
    writer = PredictionWriter(tmp_path, labels=["glioma", "meningioma", "notumor"])
    row = writer.row("b.jpg", torch.tensor([0.1, 0.2, 0.7]))
    assert row["prediction"] == "notumor" and row["probability_glioma"] == pytest.approx(0.1)
    assert PredictionWriter(tmp_path, unit="months").row("c.png", torch.tensor([131.25]))["prediction"] == 131.25


def test_prediction_writer_writes_csv_and_json_after_a_run(tmp_path):
    trainer, evaluator, _ = _engines(tmp_path, max_epochs=2)
    trainer.run()
    writer = PredictionWriter(tmp_path / "pred", labels=["dark", "bright"])
    writer.attach(evaluator)
    evaluator.run()
    rows = list(csv.DictReader((tmp_path / "pred" / "predictions.csv").open()))
    assert len(rows) == 16 and set(rows[0]) == {"image", "prediction", "probability_dark", "probability_bright"}
    assert len(json.loads((tmp_path / "pred" / "predictions.json").read_text())["predictions"]) == 16


def test_regression_metrics_average_over_images_so_rmse_exceeds_mae_for_uneven_errors():
    from ignite.metrics import MeanAbsoluteError, RootMeanSquaredError

    from radtl.engines import regression_values

    output = _output([[10.0], [20.0], [40.0]], [[10.0], [10.0], [10.0]])  # errors 0, 10, 30
    mae, rmse = MeanAbsoluteError(), RootMeanSquaredError()
    for metric in (mae, rmse):
        metric.update(regression_values(output))
    assert mae.compute() == pytest.approx(40 / 3) and rmse.compute() == pytest.approx((1000 / 3) ** 0.5)


# --- evaluation reports: confusion matrix, per-class scores, predicted-vs-true scatter ------------------------


def _evaluated(report, batches):
    """Run ``report`` (and anything else attached to it) on an engine whose output is each of ``batches``, as a
    MONAI evaluator's decollated output."""
    engine = Engine(lambda engine, batch: batch)
    report.attach(engine)
    engine.run(batches, max_epochs=1)
    return engine


def _case(pred, label, filename=""):
    image = MetaTensor(torch.zeros(1, 2, 2), meta={"filename_or_obj": filename})
    return {"image": image, "pred": torch.tensor(pred, dtype=torch.float32), "label": torch.tensor(label)}


def test_confusion_matrix_has_true_classes_as_rows_and_every_class_listed():
    matrix = confusion_matrix(predicted=[1, 0, 2, 2, 1], true=[0, 0, 2, 1, 1], num_classes=4)
    assert matrix.tolist() == [[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]]


def test_per_class_scores_are_scikit_learns_and_zero_where_undefined():
    scores = per_class_scores(predicted=[1, 0, 2, 2, 1], true=[0, 0, 2, 1, 1], labels=["a", "b", "c", "d"])
    assert list(scores) == ["a", "b", "c", "d"]
    assert scores["a"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert scores["c"]["precision"] == 0.5 and scores["c"]["recall"] == 1.0
    assert scores["d"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_classification_report_writes_the_matrix_the_scores_and_a_figure(tmp_path):
    batches = [
        [_case([0.8, 0.1, 0.1], 0, "a.dcm"), _case([0.2, 0.7, 0.1], 0, "b.dcm")],
        [_case([0.1, 0.1, 0.8], 2, "c.dcm"), _case([0.1, 0.6, 0.3], 1, "d.dcm"), _case([0.5, 0.2, 0.3], 1, "e.dcm")],
    ]
    report = ClassificationReport(tmp_path, prefix="test", labels={"0": "glioma", "1": "meningioma", "2": "pituitary"})
    _evaluated(report, batches)
    rows = list(csv.reader((tmp_path / "test_confusion_matrix.csv").open()))
    assert rows[0] == ["true/predicted", "glioma", "meningioma", "pituitary"]
    assert rows[1:] == [["glioma", "1", "1", "0"], ["meningioma", "1", "1", "0"], ["pituitary", "0", "0", "1"]]
    per_class = {row["class"]: row for row in csv.DictReader((tmp_path / "test_per_class.csv").open())}
    assert list(per_class) == ["glioma", "meningioma", "pituitary"]
    assert per_class["pituitary"] == {"class": "pituitary", "precision": "1.0", "recall": "1.0", "f1": "1.0",
                                      "support": "1"}
    with Image.open(tmp_path / "test_confusion_matrix.png") as figure:
        assert figure.format == "PNG" and min(figure.size) > 100
    assert [case["image"] for case in report.cases] == ["a.dcm", "b.dcm", "c.dcm", "d.dcm", "e.dcm"]


def test_a_binary_report_names_both_classes_from_one_probability(tmp_path):
    batches = [[_case([0.9], [1.0]), _case([0.2], [1.0]), _case([0.4], [0.0])]]
    report = ClassificationReport(tmp_path, labels=["normal", "covid"])
    _evaluated(report, batches)
    summary = report.summary()
    assert summary["confusion_matrix"]["labels"] == ["normal", "covid"]
    assert summary["confusion_matrix"]["counts"] == [[1, 0], [1, 1]]
    assert summary["per_class"]["covid"]["recall"] == 0.5


def test_metrics_writer_puts_the_reports_summary_beside_the_metrics(tmp_path):
    report = ClassificationReport(tmp_path, labels=["dark", "bright"])
    writer = MetricsWriter(tmp_path / "test_metrics.json", extra={"split": "test"}, reports=[report])
    engine = Engine(lambda engine, batch: batch)
    report.attach(engine)
    writer.attach(engine)
    engine.run([[_case([0.2, 0.8], 1), _case([0.6, 0.4], 1)], [_case([0.9, 0.1], 0)]], max_epochs=1)
    result = json.loads((tmp_path / "test_metrics.json").read_text())
    assert result["split"] == "test" and result["metrics"] == {}
    assert set(result["per_class"]) == {"dark", "bright"} and result["per_class"]["bright"]["support"] == 2
    assert result["confusion_matrix"]["counts"] == [[1, 0], [1, 1]]
    assert sum(map(sum, result["confusion_matrix"]["counts"])) == 3


def test_a_class_index_beyond_the_names_given_is_a_report_error(tmp_path):
    with pytest.raises(ReportError, match="class index 2 .* 2 class name"):
        _evaluated(ClassificationReport(tmp_path, labels=["normal", "covid"]), [[_case([0.1, 0.2, 0.7], 2)]])


def test_a_report_on_unlabelled_output_is_a_report_error(tmp_path):
    item = {"image": torch.zeros(1, 2, 2), "pred": torch.tensor([0.3])}
    with pytest.raises(ReportError, match="without its true value"):
        _evaluated(RegressionReport(tmp_path), [[item]])


def test_regression_report_writes_each_case_and_the_scatter(tmp_path):
    batches = [[_case([130.0], [120.0], "a.dcm"), _case([100.0], [110.0], "b.dcm")], [_case([60.0], [60.0], "c.dcm")]]
    _evaluated(RegressionReport(tmp_path, prefix="validation", unit="months"), batches)
    rows = list(csv.DictReader((tmp_path / "validation_cases.csv").open()))
    assert [(r["image"], float(r["true"]), float(r["predicted"]), float(r["error"])) for r in rows] == [
        ("a.dcm", 120.0, 130.0, 10.0), ("b.dcm", 110.0, 100.0, -10.0), ("c.dcm", 60.0, 60.0, 0.0)
    ]
    with Image.open(tmp_path / "validation_scatter.png") as figure:
        assert figure.format == "PNG" and min(figure.size) > 100


def test_a_report_collects_again_on_each_run(tmp_path):
    report = ClassificationReport(tmp_path, labels=["a", "b"])
    engine = _evaluated(report, [[_case([0.9], [1.0])]])
    engine.run([[_case([0.1], [0.0]), _case([0.2], [0.0])]], max_epochs=1)
    assert report.matrix().tolist() == [[2, 0], [0, 0]]
