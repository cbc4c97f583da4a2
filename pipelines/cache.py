"""Stage fingerprints: when a finished stage run already computed what a stage would compute.

A stage's fingerprint hashes its own resolved config sections, the run ids of the stage runs it
reads (or, for prepare, the dataset's content digest) and the code version (package version and
git commit); train's also hashes the file of the model builder's module, so that an edited builder
(a user's own, outside this repository) trains again. A finished run with the same fingerprint is
reused instead of recomputed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from importlib import metadata

import mlflow

from models import registry
from pipelines import tracking
from pipelines.config import ConfigError, ExperimentConfig

STAGES = ("prepare", "train", "evaluate", "export")
FINGERPRINT_TAG = "fingerprint"


def forced_stages(force: Collection[str]) -> set[str]:
    """The stages `--force` names ("all": every one); an unknown name is a ConfigError."""
    names = set(force)
    if "all" in names:
        return set(STAGES)
    unknown = names - set(STAGES)
    if unknown:
        raise ConfigError(
            f"--force {', '.join(sorted(unknown))} is not a stage; allowed: all, {', '.join(STAGES)}"
        )
    return names


def code_version() -> str:
    """The package version and git commit this process runs."""
    try:
        version = metadata.version("deeparch")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return f"{version}+{tracking.git_commit()}"


def fingerprint(config: ExperimentConfig, stage: str, upstream: str) -> str:
    """Hash of what determines `stage`'s output: its config sections and its inputs."""
    sections = {
        "prepare": ("data",),
        "train": ("seed", "data", "model", "train"),
        "evaluate": ("evaluate",),
        "export": ("export",),
    }[stage]
    dumped = config.model_dump(mode="json")
    payload = {
        "stage": stage,
        "config": {key: dumped[key] for key in sections},
        "upstream": upstream,
        "code": code_version(),
    }
    if stage == "train":
        payload["builder_source"] = registry.source_digest(config.architecture, config.builder_folder)
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def finished_run(config: ExperimentConfig, stage: str, stage_fingerprint: str):
    """The newest FINISHED run of `stage` with this fingerprint in the config's experiment, or None."""
    return tracking.newest_run(
        tracking.experiment_id(config), {"stage": stage, FINGERPRINT_TAG: stage_fingerprint}
    )


def mark(run_id: str, stage_fingerprint: str) -> None:
    """Record the fingerprint on a finished stage run so later pipelines can reuse it."""
    mlflow.MlflowClient().set_tag(run_id, FINGERPRINT_TAG, stage_fingerprint)
