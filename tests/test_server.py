"""`deeparch server`: a shared tracking server on a real PostgreSQL, with proxied artifacts and logins."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from mlflow.server import get_app_client

from pipelines import server

from .conftest import TINY

DEEPARCH = [sys.executable, "-m", "pipelines.cli"]
ADMIN = ("admin", "admin-password-for-tests")
EXPERIMENT = "mlp-digits"
# A database password that needs URL-encoding: `%` must survive MLflow's auth ini (configparser).
DATABASE_PASSWORD = "pg p@ss%word"
CREDENTIAL_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")


# --- argument checking: nothing starts -----------------------------------------------------------


@pytest.fixture
def nothing_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if `deeparch server` tries to start a process."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a process was started: {args}")

    monkeypatch.setattr(server.subprocess, "Popen", refuse)


def test_server_without_admin_password_exits_2_and_starts_nothing(cli, monkeypatch, nothing_starts):
    monkeypatch.delenv(server.ADMIN_PASSWORD_VARIABLE, raising=False)
    status, _, error = cli("server", "--backend-store-uri", "postgresql://mlflow@127.0.0.1:5432/mlflow")
    assert status == 2
    assert "set DEEPARCH_ADMIN_PASSWORD" in error and "never starts with a default" in error
    assert "Traceback" not in error


@pytest.mark.parametrize(
    ("password", "backend", "expected"),
    [
        ("short", "sqlite:///mlflow.db", "needs 12 or more"),
        ("password1234", "sqlite:///mlflow.db", "publicly known default password"),
        ("a-good-long-password", "file:///tmp/mlruns", "is not a database URI"),
    ],
)
def test_server_rejects_weak_passwords_and_non_database_stores(
    cli, monkeypatch, nothing_starts, password, backend, expected
):
    monkeypatch.setenv(server.ADMIN_PASSWORD_VARIABLE, password)
    status, _, error = cli("server", "--backend-store-uri", backend)
    assert status == 2
    assert expected in error


def test_unreachable_database_is_one_sentence_without_its_password(cli, monkeypatch, nothing_starts):
    monkeypatch.setenv(server.ADMIN_PASSWORD_VARIABLE, ADMIN[1])
    uri = f"postgresql://mlflow:secret-db-password@127.0.0.1:{_free_port()}/mlflow"
    status, _, error = cli("server", "--backend-store-uri", uri)
    assert status == 2
    assert "cannot connect to --backend-store-uri postgresql://mlflow:***@127.0.0.1" in error
    assert "secret-db-password" not in error and "Traceback" not in error


def test_auth_config_keeps_the_admin_password_out_of_files_and_argv(tmp_path, monkeypatch):
    from mlflow.server.auth.config import read_auth_config

    quoted = urllib.parse.quote(DATABASE_PASSWORD, safe="")
    settings = server.settings_from(
        f"postgresql://mlflow:{quoted}@127.0.0.1:5432/mlflow",
        environ={server.ADMIN_PASSWORD_VARIABLE: ADMIN[1]},
    )
    path = server.write_auth_config(settings, tmp_path)
    environment = server.server_environment(settings, path, environ={server.ADMIN_PASSWORD_VARIABLE: "x"})
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)

    config = read_auth_config()  # what the server's basic-auth app reads
    assert config.database_uri == settings.backend_store_uri
    assert config.default_permission == "READ"
    assert (config.admin_username, config.admin_password) == ADMIN
    assert ADMIN[1] not in path.read_text() and path.stat().st_mode & 0o077 == 0
    assert server.ADMIN_PASSWORD_VARIABLE not in environment
    command = " ".join(server.server_command(settings))
    assert ADMIN[1] not in command and quoted not in command
    assert "--app-name basic-auth --serve-artifacts" in command and "--host 127.0.0.1" in command


# --- a real PostgreSQL and a real server ----------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _postgres_bin_dir() -> Path | None:
    """Where initdb and pg_ctl are: on PATH, or Debian's /usr/lib/postgresql/<version>/bin."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


@pytest.fixture(scope="module")
def postgres_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway PostgreSQL on a free 127.0.0.1 port, with an empty `mlflow` database."""
    bin_dir = _postgres_bin_dir()
    if bin_dir is None:
        reason = "PostgreSQL's initdb is not installed (apt-get install postgresql)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{reason}; .ci/run installs it")
        pytest.skip(reason)
    as_root = os.geteuid() == 0
    # PostgreSQL refuses to run as root: as root it runs as `postgres`, which cannot enter
    # pytest's private (0700) temp folders, so its folder is a fresh one it owns.
    root = Path(tempfile.mkdtemp(prefix="deeparch-pg-")) if as_root else tmp_path_factory.mktemp("pg")
    run_as = ["runuser", "-u", "postgres", "--"] if as_root else []
    password_file = root / "password"
    password_file.write_text(DATABASE_PASSWORD)
    if as_root:
        shutil.chown(root, "postgres")
        shutil.chown(password_file, "postgres")
    data, port = root / "data", _free_port()

    def postgres(tool: str, *args: str) -> None:
        subprocess.run(
            [*run_as, str(bin_dir / tool), *args], check=True, capture_output=True, text=True, timeout=120
        )

    try:
        postgres(
            "initdb", "-D", str(data), "-U", "deeparch", f"--pwfile={password_file}", "--auth=scram-sha-256",
            "-E", "UTF8", "--no-locale",
        )  # fmt: skip
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off"
        postgres("pg_ctl", "-D", str(data), "-l", str(root / "postgres.log"), "-w", "-o", options, "start")
        import psycopg

        user = f"deeparch:{urllib.parse.quote(DATABASE_PASSWORD, safe='')}"
        with psycopg.connect(
            host="127.0.0.1", port=port, user="deeparch", password=DATABASE_PASSWORD, dbname="postgres"
        ) as connection:
            connection.autocommit = True
            connection.execute("CREATE DATABASE mlflow")
        yield f"postgresql://{user}@127.0.0.1:{port}/mlflow"
    except subprocess.CalledProcessError as error:
        pytest.fail(f"PostgreSQL did not start: {error.stderr or error.stdout}")
    finally:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            postgres("pg_ctl", "-D", str(data), "-m", "immediate", "stop")
        if as_root:
            shutil.rmtree(root, ignore_errors=True)


def _health(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def tracking_server(postgres_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """`deeparch server` on a free port: its URL, artifacts folder and working folder."""
    folder = tmp_path_factory.mktemp("server")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    artifacts = folder / "artifacts"
    environment = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARIABLES}
    environment[server.ADMIN_PASSWORD_VARIABLE] = ADMIN[1]
    log = (folder / "server.log").open("w")
    process = subprocess.Popen(
        [
            *DEEPARCH,
            "server",
            "--backend-store-uri",
            postgres_uri,
            "--artifacts-destination",
            str(artifacts),
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        cwd=folder,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 240
        while not _health(url):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the server did not come up:\n{(folder / 'server.log').read_text()[-3000:]}")
            time.sleep(1)
        yield {"url": url, "artifacts": artifacts, "folder": folder}
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
    # Stopping `deeparch server` stops MLflow's server and its workers with it.
    assert not _health(url)


@contextlib.contextmanager
def _logged_in(url: str, user: tuple[str, str] | None) -> Iterator[mlflow.MlflowClient]:
    """An MLflow client of the server, as `user` (MLflow reads the credentials per request)."""
    saved = {name: os.environ.get(name) for name in CREDENTIAL_VARIABLES}
    saved_uri = mlflow.get_tracking_uri()
    os.environ.pop("MLFLOW_TRACKING_USERNAME", None)
    os.environ.pop("MLFLOW_TRACKING_PASSWORD", None)
    if user is not None:
        os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = user
    os.environ["MLFLOW_TRACKING_URI"] = url
    mlflow.set_tracking_uri(url)
    try:
        yield mlflow.MlflowClient(url)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        mlflow.set_tracking_uri(saved_uri)


def _deeparch_run(
    tracking: dict, user: tuple[str, str] | None, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    """`deeparch run -e mlp-digits` (tiny) against the server, as `user` (None: no credentials)."""
    environment = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARIABLES}
    environment["MLFLOW_TRACKING_URI"] = tracking["url"]
    if user is not None:
        environment["MLFLOW_TRACKING_USERNAME"], environment["MLFLOW_TRACKING_PASSWORD"] = user
    return subprocess.run(
        [*DEEPARCH, "run", "-e", EXPERIMENT, *TINY],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _run_ids(url: str) -> set[str]:
    with _logged_in(url, ADMIN) as client:
        experiments = [e.experiment_id for e in client.search_experiments()]
        return {run.info.run_id for run in client.search_runs(experiments, max_results=1000)}


def _experiment_id(url: str) -> str:
    """The `mlp-digits` experiment, created by the admin if no test did yet."""
    with _logged_in(url, ADMIN) as client:
        existing = client.get_experiment_by_name(EXPERIMENT)
        return existing.experiment_id if existing else client.create_experiment(EXPERIMENT)


@pytest.mark.slow
def test_run_with_credentials_logs_everything_and_artifacts_download_through_the_server(
    tracking_server, tmp_path
):
    result = _deeparch_run(tracking_server, ADMIN, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"{tracking_server['url']}/#/experiments/" in result.stdout

    with _logged_in(tracking_server["url"], ADMIN) as client:
        experiment = client.get_experiment_by_name(EXPERIMENT)
        runs = client.search_runs([experiment.experiment_id], max_results=100)
        by_stage = {run.data.tags["stage"]: run for run in runs}
        assert set(by_stage) == {"pipeline", "prepare", "train", "evaluate", "export"}
        assert all(run.info.status == "FINISHED" for run in runs)
        train = by_stage["train"]
        assert train.data.params["train.epochs"] == "1" and train.data.params["data.max_examples"] == "200"
        assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(train.data.metrics)
        assert "test_accuracy" in by_stage["evaluate"].data.metrics
        # Artifacts go through the server (mlflow-artifacts:) into its artifacts destination.
        assert train.info.artifact_uri.startswith("mlflow-artifacts:/")
        config = mlflow.artifacts.download_artifacts(
            run_id=train.info.run_id, artifact_path="config.yaml", dst_path=str(tmp_path / "download")
        )
        assert "mlp-digits" in Path(config).read_text()
        model = mlflow.pyfunc.load_model(train.data.tags["model_uri"])
        assert model.metadata.run_id == train.info.run_id
    assert list(tracking_server["artifacts"].rglob("config.yaml"))
    # The artifact endpoint itself wants a login.
    artifact_url = f"{tracking_server['url']}/api/2.0/mlflow-artifacts/artifacts/{experiment.experiment_id}"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(artifact_url, timeout=10)
    assert refused.value.code == 401


@pytest.mark.slow
@pytest.mark.parametrize(
    ("user", "expected"),
    [
        (None, "needs a login: set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"),
        ((ADMIN[0], "a-wrong-password"), "refused the login of user 'admin'"),
    ],
    ids=["no-credentials", "wrong-password"],
)
def test_run_without_valid_credentials_is_refused_and_writes_nothing(
    tracking_server, tmp_path, user, expected
):
    before = _run_ids(tracking_server["url"])
    result = _deeparch_run(tracking_server, user, tmp_path)
    assert result.returncode == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert _run_ids(tracking_server["url"]) == before


@pytest.mark.slow
def test_second_user_without_permission_cannot_write_to_the_experiment(tracking_server, tmp_path):
    url = tracking_server["url"]
    experiment = _experiment_id(url)
    reader = ("reader", "reader-password-123")
    with _logged_in(url, ADMIN):
        users = get_app_client("basic-auth", tracking_uri=url)
        users.create_user(*reader)
    before = _run_ids(url)

    result = _deeparch_run(tracking_server, reader, tmp_path)
    assert result.returncode == 1
    assert f"user 'reader' may not start runs in experiment '{EXPERIMENT}'" in result.stderr
    assert "Traceback" not in result.stderr
    assert _run_ids(url) == before

    with _logged_in(url, reader) as client:
        assert client.get_experiment(experiment).name == EXPERIMENT  # READ by default
        with pytest.raises(mlflow.exceptions.MlflowException) as denied:
            client.create_run(experiment)
        assert denied.value.error_code == "PERMISSION_DENIED"
    with _logged_in(url, ADMIN) as client:
        run = client.create_run(experiment)  # the admin can
        client.set_terminated(run.info.run_id)
        users.grant_user_permission(reader[0], "experiment", experiment, "EDIT")
    with _logged_in(url, reader) as client:
        run = client.create_run(experiment)  # and so can the reader, once granted EDIT
        client.set_terminated(run.info.run_id)


# --- `deeparch ui` --------------------------------------------------------------------------------


def _processes_with(marker: str) -> list[str]:
    """The command lines of this machine's processes whose environment holds `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip())
        except OSError:  # ended meanwhile, or not ours to read
            continue
    return found


@pytest.mark.slow
def test_ui_stopped_by_sigterm_stops_mlflows_workers_too(tmp_path):
    # MLflow's UI starts a job runner and seven task consumers; SIGTERM to `deeparch ui` used to
    # kill only `mlflow ui` and leave them running (about 1.8 GB together).
    marker = f"DEEPARCH_UI_TEST={tmp_path.name}"
    (tmp_path / "mlruns").mkdir()
    port = _free_port()
    environment = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}",
        "DEEPARCH_UI_TEST": tmp_path.name,
    }
    log = (tmp_path / "ui.log").open("w")
    process = subprocess.Popen(
        [*DEEPARCH, "ui", "--port", str(port)], cwd=tmp_path, env=environment, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 240
        # Up, with its workers started: deeparch, mlflow ui, the job runner and its consumers.
        while not (_health(f"http://127.0.0.1:{port}") and len(_processes_with(marker)) > 3):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the UI did not come up:\n{(tmp_path / 'ui.log').read_text()[-3000:]}")
            time.sleep(1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=90) == 0
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
    deadline = time.monotonic() + 30
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(1)
    assert _processes_with(marker) == []
    assert not _health(f"http://127.0.0.1:{port}")
    assert "deeparch: MLflow UI stopped" in (tmp_path / "ui.log").read_text()
