"""Configs: YAML + dotted overrides, and bad input rejected with exit 2 before any run."""

from __future__ import annotations

import pytest

from pipelines.config import (
    ConfigError,
    load_experiment,
    load_experiments,
    parse_override,
    shipped_experiments,
)

from .conftest import all_runs


def test_overrides_are_read_as_yaml_values():
    config = load_experiment(
        "cnn-digits", ["train.epochs=3", "model.filters=[16,32]", "train.learning_rate=3e-3"]
    )
    assert config.train.epochs == 3
    assert config.model.filters == [16, 32]
    assert config.train.learning_rate == pytest.approx(3e-3)


def test_changing_architecture_drops_the_old_architectures_keys():
    config = load_experiment("mlp-digits", ["model.architecture=cnn", "model.filters=[8]"])
    assert config.architecture == "cnn"
    assert config.model.filters == [8]


def test_default_suite_shows_each_architecture_on_the_embedded_digits():
    configs = load_experiments("default")
    assert {c.architecture for c in configs} == {"mlp", "cnn", "rnn", "lstm", "gan"}
    assert {c.data.name for c in configs} == {"digits"}


# Shipped experiments for the user's own data name no file; the user gives it on the command line.
OWN_DATA_OVERRIDES = {
    "cnn-images": ["data.path=photos"],
    "gan-images": ["data.path=photos"],
    "mlp-tabular": ["data.path=people.csv", "data.target=income"],
}


def test_every_shipped_experiment_is_valid():
    for name in shipped_experiments():
        assert load_experiments(name, OWN_DATA_OVERRIDES.get(name, []))


def test_mlp_tabular_bounds_a_large_tables_training_and_waits_longer_on_a_small_one():
    train = load_experiment("mlp-tabular", OWN_DATA_OVERRIDES["mlp-tabular"]).train
    # A million rows (2,813 batches of 256 an epoch) train 3 epochs; fertility's 637 batches 15.
    assert (train.planned_epochs(2813), train.planned_epochs(637)) == (3, 15)
    # Attrition's 4 batches and diamonds' 135 keep every epoch early stopping may want (diamonds
    # stopped after 62-74 epochs with no cap).
    assert (train.planned_epochs(4), train.planned_epochs(135)) == (200, 74)
    # And a small table waits at least 200 batches for a better validation loss: attrition 50 epochs.
    assert (train.patience_epochs(4), train.patience_epochs(135)) == (50, 15)


def test_user_yaml_path_is_accepted(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\ndata: {name: digits}\nmodel: {architecture: mlp, units: [8]}\n")
    assert load_experiment(str(path)).model.units == [8]


def test_config_hash_changes_with_any_value():
    base = load_experiment("mlp-digits")
    assert base.section_hash() == load_experiment("mlp-digits").section_hash()
    assert base.section_hash() != load_experiment("mlp-digits", ["seed=1"]).section_hash()
    assert base.section_hash("data") == load_experiment("mlp-digits", ["seed=1"]).section_hash("data")


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["model.architecture=transformer"], ["model.architecture", "'transformer'", "mlp"]),
        (["data.name=no_such_dataset"], ["data.name", "'no_such_dataset'", "digits, mnist1d"]),
        (["train.epoch=3"], ["train.epoch", "unknown key", "epochs"]),
        (["train.epochs=many"], ["train.epochs", "'many'", "integer"]),
        (["train.epochs=-1"], ["train.epochs", "-1", "greater than 0"]),
        (["model.units=[64,-2]"], ["model.units[1]", "-2", "greater than 0"]),
        (["model.activation=softplus"], ["model.activation", "'softplus'", "'relu'"]),
        (["epochs"], ["'epochs'", "key.path=value"]),
    ],
)
def test_invalid_config_exits_2_naming_field_value_and_allowed(store, cli, overrides, expected):
    status, _, error = cli("run", "-e", "mlp-digits", *overrides)
    assert status == 2
    for fragment in expected:
        assert fragment in error
    assert "Traceback" not in error
    assert all_runs(store) == []


def test_unknown_experiment_lists_shipped_ones(store, cli):
    status, _, error = cli("train", "-e", "no-such-experiment")
    assert status == 2
    assert "mlp-digits" in error


def test_parse_override_rejects_missing_value_separator():
    with pytest.raises(ConfigError):
        parse_override("train.epochs")
    assert parse_override("model.units=[1,2]") == (["model", "units"], [1, 2])
