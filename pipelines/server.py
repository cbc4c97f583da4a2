"""`deeparch server`: an MLflow tracking server a team shares.

PostgreSQL holds runs, users and permissions; the server proxies artifacts so that clients never
hold the artifact store's credentials; MLflow's basic-auth app checks every request. The admin
password comes from the environment only, never from a file, a flag or MLflow's old default.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.config import ConfigError
from pipelines.tracking import masked_uri

ADMIN_PASSWORD_VARIABLE = "DEEPARCH_ADMIN_PASSWORD"
DEFAULT_ADMIN_USERNAME = "admin"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000
DEFAULT_ARTIFACTS_DESTINATION = "mlartifacts"
# What a user holds on an experiment nobody granted them anything on. READ lets a team see each
# other's runs while only the experiment's creator (MANAGE) and those they grant EDIT may write.
DEFAULT_PERMISSION = "READ"
PERMISSIONS = ("READ", "NO_PERMISSIONS", "EDIT", "MANAGE")
# MLflow's basic-auth password policy; checked here so the message names our variable.
MIN_PASSWORD_LENGTH = 12
# The admin password older MLflow versions shipped (GHSA-gq3w-7jj3-x7gr); MLflow refuses it too.
_MLFLOW_OLD_DEFAULT_PASSWORD = "password1234"
_BACKEND_SCHEMES = ("postgresql", "sqlite")
_STOP_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class ServerSettings:
    """Everything `mlflow server` needs for a shared, authenticated tracking server."""

    backend_store_uri: str
    admin_password: str = field(repr=False)
    artifacts_destination: str = DEFAULT_ARTIFACTS_DESTINATION
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    workers: int | None = None
    admin_username: str = DEFAULT_ADMIN_USERNAME
    default_permission: str = DEFAULT_PERMISSION
    allowed_hosts: str | None = None

    @property
    def url(self) -> str:
        """The address clients put in MLFLOW_TRACKING_URI (for a server bound to this machine)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"


def settings_from(
    backend_store_uri: str,
    environ: Mapping[str, str] = os.environ,
    artifacts_destination: str = DEFAULT_ARTIFACTS_DESTINATION,
    **options,
) -> ServerSettings:
    """Validated settings: the admin password from DEEPARCH_ADMIN_PASSWORD, a database backend.

    Raises ConfigError with one sentence per problem, before anything starts.
    """
    problems = []
    password = environ.get(ADMIN_PASSWORD_VARIABLE, "")
    if not password:
        problems.append(
            f"set {ADMIN_PASSWORD_VARIABLE} to the password of the server's admin user "
            f"({MIN_PASSWORD_LENGTH} characters or more); the server never starts with a default one"
        )
    elif len(password) < MIN_PASSWORD_LENGTH:
        problems.append(
            f"{ADMIN_PASSWORD_VARIABLE} has {len(password)} characters; MLflow's basic auth "
            f"needs {MIN_PASSWORD_LENGTH} or more"
        )
    elif password == _MLFLOW_OLD_DEFAULT_PASSWORD:
        problems.append(
            f"{ADMIN_PASSWORD_VARIABLE} is the publicly known default password of older MLflow "
            "versions; choose another one"
        )
    scheme = backend_store_uri.split(":", 1)[0].split("+", 1)[0]
    if "://" not in backend_store_uri or scheme not in _BACKEND_SCHEMES:
        problems.append(
            f"--backend-store-uri {masked_uri(backend_store_uri)!r} is not a database URI; allowed: "
            "postgresql://USER@HOST:PORT/DATABASE (or sqlite:///FILE.db to try the server alone)"
        )
    port = options.get("port", DEFAULT_PORT)
    if not 0 < port < 65536:
        problems.append(f"--port {port} is not a TCP port; allowed: 1 to 65535")
    if problems:
        raise ConfigError("\n".join(problems))
    return ServerSettings(
        backend_store_uri=backend_store_uri,
        admin_password=password,
        artifacts_destination=_absolute_destination(artifacts_destination),
        **options,
    )


def check_backend_reachable(settings: ServerSettings) -> None:
    """Connect to the backend database once, so that a wrong URI is one sentence, not a traceback."""
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(settings.backend_store_uri)
        with engine.connect():
            pass
        engine.dispose()
    except (sqlalchemy.exc.SQLAlchemyError, ImportError) as error:
        # ImportError: the URI names a database driver that is not installed.
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise ConfigError(
            f"cannot connect to --backend-store-uri {masked_uri(settings.backend_store_uri)}: {reason}"
        ) from None


def write_auth_config(settings: ServerSettings, folder: Path) -> Path:
    """The basic-auth ini MLFLOW_AUTH_CONFIG_PATH points at: users live in the backend database.

    The admin password is not in it: the server process gets it in its environment.
    """
    values = {
        "default_permission": settings.default_permission,
        "database_uri": settings.backend_store_uri,
        "admin_username": settings.admin_username,
        "authorization_function": "mlflow.server.auth:authenticate_request_basic_auth",
    }
    # configparser reads `%` as interpolation; a URL-encoded database password may hold some.
    lines = ["[mlflow]"] + [f"{key} = {value.replace('%', '%%')}" for key, value in values.items()]
    path = folder / "basic_auth.ini"
    path.touch(mode=0o600)
    path.write_text("\n".join(lines) + "\n")
    return path


def server_command(settings: ServerSettings) -> list[str]:
    """The `mlflow server` command line (the backend URI travels in the environment, not argv)."""
    command = [sys.executable, "-m", "mlflow", "server", "--app-name", "basic-auth", "--serve-artifacts"]
    command += ["--artifacts-destination", settings.artifacts_destination]
    command += ["--host", settings.host, "--port", str(settings.port)]
    if settings.workers is not None:
        command += ["--workers", str(settings.workers)]
    if settings.allowed_hosts:
        command += ["--allowed-hosts", settings.allowed_hosts]
    return command


def server_environment(
    settings: ServerSettings, auth_config: Path, environ: Mapping[str, str] = os.environ
) -> dict[str, str]:
    """The server's environment: secrets and the backend URI stay out of `ps` and off the disk."""
    environment = dict(environ)
    environment.pop(ADMIN_PASSWORD_VARIABLE, None)
    environment.update(
        {
            "MLFLOW_BACKEND_STORE_URI": settings.backend_store_uri,
            "MLFLOW_AUTH_CONFIG_PATH": str(auth_config),
            "MLFLOW_AUTH_ADMIN_USERNAME": settings.admin_username,
            "MLFLOW_AUTH_ADMIN_PASSWORD": settings.admin_password,
            # Signs the sign-up form's CSRF token; a fresh one per start is enough for one server.
            "MLFLOW_FLASK_SERVER_SECRET_KEY": environ.get("MLFLOW_FLASK_SERVER_SECRET_KEY")
            or secrets.token_urlsafe(32),
        }
    )
    return environment


def serve(settings: ServerSettings) -> int:
    """Run the tracking server until it exits or Ctrl-C / SIGTERM stops it; return its status."""
    check_backend_reachable(settings)
    with tempfile.TemporaryDirectory(prefix="deeparch-server-") as folder:
        auth_config = write_auth_config(settings, Path(folder))
        print(
            f"MLflow tracking server on {settings.url} (backend {masked_uri(settings.backend_store_uri)}, "
            f"artifacts {settings.artifacts_destination}, admin user {settings.admin_username!r}); "
            "Ctrl-C stops it",
            flush=True,
        )
        print(
            f"  clients: MLFLOW_TRACKING_URI={settings.url} "
            "MLFLOW_TRACKING_USERNAME=... MLFLOW_TRACKING_PASSWORD=... deeparch run -e ...",
            flush=True,
        )
        return run_until_stopped(
            server_command(settings), server_environment(settings, auth_config), "tracking server"
        )


def run_until_stopped(command: list[str], environment: Mapping[str, str] | None, name: str) -> int:
    """Run an MLflow server process until it exits (its status) or Ctrl-C / SIGTERM stops it (0).

    It runs in a process group of its own, and stopping stops the group: MLflow 3's servers start
    a job runner and seven task consumers (about 250 MB each) that outlived a stopped parent.
    """
    process = subprocess.Popen(command, env=environment, start_new_session=True)
    try:
        return process.wait()
    except KeyboardInterrupt:
        _stop(process)
        print(f"deeparch: {name} stopped", file=sys.stderr)
        return 0


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the server's process group and wait until all of it has ended (uvicorn's workers
    can outlive `mlflow server` by seconds); SIGKILL what is left after the timeout."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + _STOP_TIMEOUT_SECONDS
    while _group_alive(process) and time.monotonic() < deadline:
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _group_alive(process: subprocess.Popen) -> bool:
    """Whether a process of `process`'s group still runs (the leader is reaped when it ends)."""
    process.poll()
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    return True


def _absolute_destination(destination: str) -> str:
    """A local folder as an absolute path (the server may run elsewhere than the shell); URIs as is."""
    if "://" in destination or destination.startswith("mlflow-artifacts:"):
        return destination
    return str(Path(destination).expanduser().resolve())
