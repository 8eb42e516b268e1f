"""radtl.engines: the study's metrics, batch preparation and handlers on MONAI's Ignite engines."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.handlers import EarlyStopHandler, ValidationHandler, stopping_fn_from_metric
from sklearn.metrics import f1_score

from radtl.engines import Accuracy, MacroF1, PredictionWriter, PrepareBatch, TrainingHistory, class_indices


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
