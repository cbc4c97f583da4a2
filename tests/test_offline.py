"""deeparch contacts nothing beyond this machine and the tracking server it is given."""

from __future__ import annotations

import os
import subprocess
import sys

# MLflow turns its telemetry off by itself under pytest and in CI, recognised by these variables
# (mlflow.telemetry.utils._is_ci_env_or_testing); the probe runs without them, as a user's command
# does, and checks that MLflow agrees.
CI_VARIABLES = (
    "PYTEST_CURRENT_TEST",
    "CI",
    "GITHUB_ACTIONS",
    "CIRCLECI",
    "GITLAB_CI",
    "JENKINS_URL",
    "TRAVIS",
    "TF_BUILD",
    "BITBUCKET_BUILD_NUMBER",
    "CODEBUILD_BUILD_ARN",
    "BUILDKITE",
    "TEAMCITY_VERSION",
    "CLOUD_RUN_EXECUTION",
    "RUNBOT_HOST_URL",
    "RUNBOT_BUILD_NAME",
    "RUNBOT_WORKER_ID",
)
TELEMETRY_PROBE = """
import os
import pipelines.tracking
import mlflow.telemetry.utils
from mlflow.telemetry import get_telemetry_client
assert not mlflow.telemetry.utils._IS_IN_CI_ENV_OR_TESTING, "MLflow still sees a CI or test run"
print("setting:", os.environ.get("MLFLOW_DISABLE_TELEMETRY"))
print("client:", get_telemetry_client())
"""


def _telemetry_as_a_user(home, **environment: str) -> str:
    """What MLflow's telemetry is after importing deeparch's tracking in a user-like process."""
    probe = {key: value for key, value in os.environ.items() if key not in CI_VARIABLES}
    probe.pop("MLFLOW_DISABLE_TELEMETRY", None)
    probe.update(HOME=str(home), **environment)
    result = subprocess.run(
        [sys.executable, "-c", TELEMETRY_PROBE], capture_output=True, text=True, env=probe, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_mlflow_telemetry_is_off_and_writes_nothing_home(tmp_path):
    output = _telemetry_as_a_user(tmp_path)
    assert "setting: true" in output
    assert "client: None" in output  # no client: no config thread, no DNS query, no upload
    assert not (tmp_path / ".config" / "mlflow").exists()  # MLflow's installation id file


def test_a_users_own_telemetry_setting_is_kept(monkeypatch):
    import importlib

    import pipelines

    # Turning it on, `false`, would let a probe contact MLflow's servers, which tests never do;
    # any value the user set is kept as given, not replaced by deeparch's default.
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "false")
    importlib.reload(pipelines)
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "false"
