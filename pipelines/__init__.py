"""Everything that moves data and runs: config, data, stages, tracking, runner, CLI."""

import os

# Runs stay on this machine or the team's tracking server. MLflow 3 otherwise sends usage
# telemetry from every process that imports it: at import it writes an installation id under
# ~/.config/mlflow and starts a thread that looks up and calls MLflow's own servers (a DNS query
# even offline). Off unless the user sets MLFLOW_DISABLE_TELEMETRY=false; this package runs
# before any of its modules imports MLflow, and the processes it starts inherit the setting.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
