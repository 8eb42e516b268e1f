"""What radtl prints: one line per epoch (EpochLog), engine logs only when verbose, progress bars only on a terminal."""

from __future__ import annotations

import io
import logging
import logging.config
import subprocess
import sys
import types

import pytest
from ignite.engine import Engine, Events
from ignite.handlers import EarlyStopping

import radtl.logs
from radtl.engines import EpochLog, TerminalProgressBar
from radtl.engines import handlers as handlers_module
from tests.support.paths import REPO

BUNDLES = sorted(p.parent.parent.name for p in (REPO / "bundles").glob("*/configs/train.json"))
ENGINE_INFO = "ignite.engine.engine.Engine"


@pytest.fixture(autouse=True)
def restored_logging():
    """Every logger's level, handlers and propagation (and radtl.logs' state) as they were before the test."""
    loggers = [logging.getLogger()] + [
        lg for lg in logging.root.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    saved = [(lg, lg.level, list(lg.handlers), lg.propagate, lg.disabled) for lg in loggers]
    state = radtl.logs._configured, list(radtl.logs._others)
    yield
    for lg, level, handlers, propagate, disabled in saved:
        lg.setLevel(level)
        lg.handlers, lg.propagate, lg.disabled = handlers, propagate, disabled
    radtl.logs._configured, radtl.logs._others = state


@pytest.fixture
def clock(monkeypatch):
    """A fake ``time.perf_counter`` for the handlers module; ``clock.now += s`` advances it."""
    fake = types.SimpleNamespace(now=0.0)
    monkeypatch.setattr(handlers_module, "time", types.SimpleNamespace(perf_counter=lambda: fake.now))
    return fake


def _training(clock, scores, max_epochs, patience=None, validations_per_epoch=1):
    """A trainer of 2 iterations per epoch (losses 0.4, 0.6; 5 s each) and a validator whose f1 follows ``scores``."""
    scores = iter(scores)
    losses = iter([0.4, 0.6] * max_epochs)

    def step(engine, batch):
        clock.now += 5.0
        return {"loss": next(losses)}

    trainer, validator = Engine(step), Engine(lambda engine, batch: None)
    validator.add_event_handler(Events.COMPLETED, lambda e: e.state.metrics.update(f1=next(scores)))
    every = Events.ITERATION_COMPLETED(every=2 // validations_per_epoch)
    trainer.add_event_handler(every, lambda _: validator.run([0]))
    stopper = None
    if patience:
        stopper = EarlyStopping(patience, score_function=lambda e: e.state.metrics["f1"], trainer=trainer)
        validator.add_event_handler(Events.COMPLETED, stopper)
    EpochLog(validator, early_stop=stopper, loss_transform=lambda output: output["loss"]).attach(trainer)
    return trainer


def _lines(caplog):
    return [r.getMessage() for r in caplog.records if r.name == radtl.logs.TRAIN_LOGGER]


def test_epoch_log_writes_one_line_per_epoch_with_loss_metric_best_and_time_left(clock, caplog):
    caplog.set_level(logging.INFO, logger=radtl.logs.TRAIN_LOGGER)
    _training(clock, [0.5, 0.8, 0.7, 0.9], max_epochs=4).run([1, 2], max_epochs=4)
    assert _lines(caplog) == [
        "epoch 1/4  loss 0.5  val f1 0.5  best 0.5 (epoch 1)  10 s/epoch  ETA 30 s (3 epochs left)",
        "epoch 2/4  loss 0.5  val f1 0.8  best 0.8 (epoch 2)  10 s/epoch  ETA 20 s (2 epochs left)",
        "epoch 3/4  loss 0.5  val f1 0.7  best 0.8 (epoch 2)  10 s/epoch  ETA 10 s (1 epoch left)",
        "epoch 4/4  loss 0.5  val f1 0.9  best 0.9 (epoch 4)  10 s/epoch",
        "done: 4 epochs in 40 s; best f1 0.9 (epoch 4)",
    ]


def test_epoch_log_eta_counts_only_the_epochs_early_stopping_still_allows(clock, caplog):
    caplog.set_level(logging.INFO, logger=radtl.logs.TRAIN_LOGGER)
    _training(clock, [0.5] * 20, max_epochs=20, patience=3).run([1, 2], max_epochs=20)
    lines = _lines(caplog)
    assert lines[1] == ("epoch 2/20  loss 0.5  val f1 0.5  best 0.5 (epoch 1)  10 s/epoch  ETA 20 s "
                        "(early stop after 2 more without improvement; at most 18 epochs, 3 min 0 s)")
    assert lines[3].endswith("10 s/epoch  stopping")
    assert lines[4] == "stopped at epoch 4/20 after 40 s: no improvement in 3 epochs; best f1 0.5 (epoch 1)"
    assert len(lines) == 5


def test_epoch_log_converts_patience_counted_in_validations_to_epochs(clock, caplog):
    caplog.set_level(logging.INFO, logger=radtl.logs.TRAIN_LOGGER)
    _training(clock, [0.5] * 20, max_epochs=10, patience=4, validations_per_epoch=2).run([1, 2], max_epochs=10)
    first = _lines(caplog)[0]  # two validations, one without improvement: 3 more allowed, 1.5 epochs
    assert "ETA 15 s (early stop after 3 more validations without improvement; at most 9 epochs, 1 min 30 s)" in first


def test_epoch_log_reads_monais_early_stop_handler_and_best_metric(caplog):
    import torch
    from monai.engines import SupervisedEvaluator, SupervisedTrainer
    from monai.handlers import EarlyStopHandler, ValidationHandler, stopping_fn_from_metric

    from radtl.engines import Accuracy

    torch.manual_seed(0)
    data = [{"image": torch.full((1, 2, 2), float(i % 2)), "label": i % 2} for i in range(8)]
    loader = torch.utils.data.DataLoader(data, batch_size=4)
    network = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    optimizer = torch.optim.SGD(network.parameters(), lr=0.0)  # no learning: the metric never improves
    evaluator = SupervisedEvaluator(device=torch.device("cpu"), val_data_loader=loader, network=network,
                                    key_val_metric={"accuracy": Accuracy()})
    early_stop = EarlyStopHandler(patience=2, score_function=stopping_fn_from_metric("accuracy"))
    trainer = SupervisedTrainer(
        device=torch.device("cpu"), max_epochs=10, train_data_loader=loader, network=network, optimizer=optimizer,
        loss_function=torch.nn.CrossEntropyLoss(),
        train_handlers=[ValidationHandler(validator=evaluator, interval=1), EpochLog(evaluator, early_stop=early_stop)],
    )
    early_stop.attach(evaluator)
    early_stop.set_trainer(trainer)
    caplog.set_level(logging.INFO, logger=radtl.logs.TRAIN_LOGGER)
    trainer.run()
    lines = _lines(caplog)
    assert len(lines) == 4 and lines[0].startswith("epoch 1/10  loss ") and "val accuracy " in lines[0]
    assert "best " in lines[0] and "(epoch 1)" in lines[0] and "early stop after 2 more without improvement" in lines[0]
    assert lines[3].startswith("stopped at epoch 3/10 after ") and "no improvement in 2 epochs" in lines[3]


def test_configure_quiet_keeps_radtl_lines_and_warnings_and_hides_engine_info(capsys):
    radtl.logs.configure(verbose=False)
    logging.getLogger(ENGINE_INFO).info("Epoch[1] Complete. Time taken: 00:00:01")
    logging.getLogger(radtl.logs.TRAIN_LOGGER).info("epoch 1/2  loss 0.5")
    logging.getLogger(ENGINE_INFO).warning("something odd")
    assert capsys.readouterr().err.splitlines() == ["epoch 1/2  loss 0.5", f"WARNING {ENGINE_INFO}: something odd"]


def test_configure_verbose_shows_engine_logs_with_their_logger(capsys):
    radtl.logs.configure(verbose=True)
    logging.getLogger(ENGINE_INFO).info("Epoch[1] Complete")
    assert f"INFO {ENGINE_INFO}: Epoch[1] Complete" in capsys.readouterr().err


@pytest.mark.parametrize(("value", "verbose"), [("1", True), ("yes", True), ("0", False), ("", False)])
def test_configure_without_an_answer_reads_radtl_verbose(monkeypatch, value, verbose):
    monkeypatch.setenv(radtl.logs.VERBOSE_ENV, value)
    radtl.logs.configure()
    assert radtl.logs.is_verbose() is verbose
    assert logging.getLogger(ENGINE_INFO).isEnabledFor(logging.INFO) is verbose


def test_loggers_with_handlers_of_their_own_follow_the_verbosity(capsys):
    """Ignite's setup_logger and MONAI's get_logger give a logger its own handler; configure() got there first."""
    from ignite.utils import setup_logger
    from monai.apps.utils import get_logger

    radtl.logs.configure(verbose=False)
    stopping = setup_logger("ignite.handlers.early_stopping.EarlyStopping")
    workflows = get_logger("monai.bundle.workflows")
    stopping.info("EarlyStopping: Stop training")
    workflows.info("No workflow type and property file specified")
    workflows.warning("Default logging file does not exist")
    assert capsys.readouterr().err.splitlines() == [
        "WARNING monai.bundle.workflows: Default logging file does not exist"
    ]
    radtl.logs.configure(verbose=True)
    stopping.info("EarlyStopping: Stop training")
    assert capsys.readouterr().err.count("Stop training") == 1


def test_reapply_puts_the_command_setup_back_over_a_bundle_logging_conf():
    radtl.logs.configure(verbose=True)
    logging.config.fileConfig(REPO / "bundles" / "btmr" / "configs" / "logging.conf", disable_existing_loggers=False)
    assert not logging.getLogger(ENGINE_INFO).isEnabledFor(logging.INFO)
    radtl.logs.reapply()
    assert logging.getLogger(ENGINE_INFO).isEnabledFor(logging.INFO)
    assert len(logging.getLogger().handlers) == len(radtl.logs._others) + 1  # the bundle's console handler is gone


def test_progress_bars_only_on_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert radtl.logs.show_progress(None) is False and radtl.logs.show_progress(True) is True
    monkeypatch.setattr(sys, "stderr", types.SimpleNamespace(isatty=lambda: True))
    assert radtl.logs.show_progress(None) is True and radtl.logs.show_progress(False) is False


def test_terminal_progress_bar_draws_nothing_into_a_file(capsys):
    engine = Engine(lambda engine, batch: 0.0)
    TerminalProgressBar(desc="train").attach(engine)
    engine.run([1, 2, 3], max_epochs=1)
    assert capsys.readouterr().err == ""
    TerminalProgressBar(True, desc="train").attach(engine)
    engine.run([1, 2, 3], max_epochs=1)
    assert "train" in capsys.readouterr().err


def test_radtl_logs_imports_no_torch_monai_or_ignite():
    code = "import sys, radtl.logs; print(sorted(m for m in ('torch', 'monai', 'ignite') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert result.stdout.strip() == "[]"


def test_every_bundle_ships_the_same_two_logging_confs():
    for name in ("logging.conf", "logging_verbose.conf"):
        texts = {(REPO / "bundles" / b / "configs" / name).read_text() for b in BUNDLES}
        assert len(texts) == 1, name


@pytest.mark.parametrize(
    ("name", "engine_level"), [("logging.conf", logging.WARNING), ("logging_verbose.conf", logging.INFO)]
)
def test_bundle_logging_conf_is_accepted_by_monai_and_sets_the_engine_loggers(name, engine_level):
    from monai.bundle import ConfigWorkflow

    configs = REPO / "bundles" / "btmr" / "configs"
    ConfigWorkflow(config_file=str(configs / "train.json"), workflow_type=None, logging_file=str(configs / name))
    for logger in ("ignite", "monai", "StatsHandler"):
        assert logging.getLogger(logger).level == engine_level, logger
    assert logging.getLogger(radtl.logs.TRAIN_LOGGER).getEffectiveLevel() == logging.INFO
    (console,) = logging.getLogger().handlers
    assert console.stream is sys.stderr


def test_every_training_bundle_logs_epochs_and_draws_bars_only_on_a_terminal():
    for bundle in BUNDLES:
        text = (REPO / "bundles" / bundle / "configs" / "train.json").read_text()
        assert '"_target_": "radtl.engines.EpochLog"' in text, bundle
        assert "ignite.handlers.ProgressBar" not in text and '"StatsHandler"' not in text, bundle
        caches = text.count('"_target_": "CacheDataset"')
        assert caches == text.count('"progress": "$radtl.logs.show_progress()"'), bundle
