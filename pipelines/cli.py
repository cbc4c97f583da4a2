"""`deeparch`: parse the command line and dispatch. TensorFlow is imported inside commands only."""

from __future__ import annotations

import argparse
import atexit
import os
import signal
import sys
from pathlib import Path

EXIT_USAGE = 2
EXIT_FAILURE = 1
# The summary tables' column of each task's headline numbers (`_headline`).
RESULT_COLUMN = "result"


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process stands so that open MLflow runs end KILLED."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(f"terminated by signal {signal.Signals(signum).name}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `deeparch` console script."""
    # TensorFlow reads this once, when it loads: set it before anything can import it. 3 keeps
    # its C++ ERROR lines out too (e.g. grappler's "remapper failed" while training the GAN):
    # they are not the user's to act on, and real failures reach Python as exceptions.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    from pipelines.config import ConfigError

    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return args.handler(args) or 0
    except ConfigError as error:
        print(f"deeparch: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as interruption:
        print(f"deeparch: {interruption or 'interrupted'}; the open runs are marked KILLED", file=sys.stderr)
        return 128 + signal.SIGTERM if isinstance(interruption, Terminated) else 128 + signal.SIGINT
    except Exception as error:  # noqa: BLE001 - user-facing errors are shown plainly
        if not _is_user_facing(error):
            raise
        print(f"deeparch: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_FAILURE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deeparch",
        description="Train, evaluate and export the classic deep learning architectures, tracked in MLflow.",
        epilog="Overrides are dotted key=value pairs, e.g. train.epochs=3 model.units=[64,64].",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    listing = commands.add_parser("list", help="architectures, datasets and shipped experiments")
    listing.set_defaults(handler=_list)

    for name, handler, help_text in (
        ("prepare", _prepare, "load a dataset and log it to MLflow"),
        ("train", _train, "train an experiment (prepares the data if needed)"),
        ("run", _run, "prepare, train, evaluate and export under one parent run"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument(
            "-e",
            "--experiment",
            required=name != "train",  # `train --resume RUN_ID` reads the run's own config
            help="shipped experiment name (see `deeparch list`) or path to a YAML file",
        )
        command.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
        if name == "run":
            command.add_argument("--out", type=Path, help="export folder (default: export.dir/<name>-<run>)")
            command.add_argument(
                "--force",
                action="append",
                nargs="?",
                const="all",
                metavar="STAGE",
                help="recompute instead of reusing finished stages: all (no value) or one stage; repeatable",
            )
        if name == "train":
            command.add_argument(
                "--resume", metavar="TRAIN_RUN_ID", help="continue a killed train run from its last epoch"
            )
        command.set_defaults(handler=handler)

    evaluate = commands.add_parser("evaluate", help="evaluate the model of a train run on the test split")
    evaluate.add_argument("--run", required=True, metavar="TRAIN_RUN_ID", help="id of a finished train run")
    evaluate.set_defaults(handler=_evaluate)

    export = commands.add_parser("export", help="export the model of a train run as a SavedModel")
    export.add_argument("--run", required=True, metavar="TRAIN_RUN_ID", help="id of a finished train run")
    export.add_argument("--out", type=Path, help="destination folder (default: exports/<name>-<run>)")
    export.add_argument("--register", metavar="NAME", help="also register the model under NAME in MLflow")
    export.set_defaults(handler=_export)

    promote = commands.add_parser(
        "promote", help="move the `champion` alias to a registered version that passes its evaluation"
    )
    promote.add_argument("name", help="registered model name")
    promote.add_argument("--version", required=True, help="the version to promote")
    promote.set_defaults(handler=_promote)

    sweep = commands.add_parser("sweep", help="run a grid (or random sample) of overrides under one run")
    sweep.add_argument(
        "-e", "--experiment", required=True, help="shipped experiment name or path to a YAML file"
    )
    sweep.add_argument(
        "overrides",
        nargs="*",
        metavar="key=v1,v2",
        help="axes (values split on top-level commas: model.units=[32],[64,64]) and plain overrides",
    )
    sweep.add_argument("--random", type=int, metavar="N", help="run N distinct combinations drawn at random")
    sweep.add_argument("--seed", type=int, default=0, help="seed of --random (default: 0)")
    sweep.set_defaults(handler=_sweep)

    tune = commands.add_parser(
        "tune", help="Optuna study over the experiment's tune.space: trials nested under one tune run"
    )
    tune.add_argument(
        "-e", "--experiment", required=True, help="shipped experiment name or path to a YAML file"
    )
    tune.add_argument(
        "overrides", nargs="*", metavar="key=value", help="config overrides, tune.space.KEY={...} included"
    )
    tune.add_argument(
        "--trials", type=int, metavar="N", help="trials of the study in total, all workers together"
    )
    tune.add_argument("--timeout", type=float, metavar="S", help="stop this worker after S seconds")
    tune.add_argument("--sampler", choices=("tpe", "random", "grid"), help="default: tune.sampler (tpe)")
    tune.add_argument(
        "--pruner", choices=("median", "hyperband", "none"), help="default: tune.pruner (median)"
    )
    tune.add_argument(
        "--study", metavar="NAME", help="study name (default: the experiment and a hash of the search)"
    )
    tune.add_argument(
        "--storage",
        metavar="URL",
        help="Optuna storage all workers share, e.g. postgresql://... (default: DEEPARCH_TUNE_STORAGE, "
        "else mlruns/optuna.db)",
    )
    tune.set_defaults(handler=_tune)

    compare = commands.add_parser("compare", help="table of finished runs: differing params and a metric")
    scope = compare.add_mutually_exclusive_group(required=True)
    scope.add_argument("-e", "--experiment", help="experiment name, YAML file, suite or MLflow experiment")
    scope.add_argument("--sweep", metavar="SWEEP_RUN_ID", help="only the runs of this sweep")
    scope.add_argument("--tune", metavar="TUNE_RUN_ID", help="only the trials of this tune run")
    compare.add_argument(
        "--metric", help="metric to sort by (default: test_accuracy, or the task's headline metric)"
    )
    compare.add_argument("--format", choices=("table", "csv", "markdown"), default="table")
    compare.set_defaults(handler=_compare)

    ui = commands.add_parser("ui", help="open the MLflow UI on the local store (127.0.0.1)")
    ui.add_argument("--port", type=int, default=5000)
    ui.set_defaults(handler=_ui)

    server = commands.add_parser(
        "server",
        help="start an MLflow tracking server a team shares (database, proxied artifacts, basic auth)",
        description="The admin password comes from the DEEPARCH_ADMIN_PASSWORD environment variable.",
    )
    server.add_argument(
        "--backend-store-uri",
        required=True,
        metavar="URI",
        help="postgresql://USER@HOST:PORT/DATABASE (or sqlite:///FILE.db to try it alone)",
    )
    server.add_argument(
        "--artifacts-destination",
        default="mlartifacts",
        metavar="DIR_OR_URI",
        help="where the server keeps artifacts (default: ./mlartifacts); clients go through the server",
    )
    server.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    server.add_argument("--port", type=int, default=5000, help="port to listen on (default: 5000)")
    server.add_argument("--workers", type=int, help="server worker processes (default: MLflow's, 4)")
    server.add_argument("--admin-username", default="admin", help="the admin user (default: admin)")
    server.add_argument(
        "--default-permission",
        choices=("READ", "NO_PERMISSIONS", "EDIT", "MANAGE"),
        default="READ",
        help="what users hold on experiments nobody granted them (default: READ)",
    )
    server.add_argument(
        "--allowed-hosts", metavar="HOSTS", help="Host headers to accept beyond localhost and private IPs"
    )
    server.set_defaults(handler=_server)
    return parser


def _list(args: argparse.Namespace) -> int:
    from models.registry import architectures
    from pipelines.config import EMBEDDED_DATASETS, shipped_experiments

    print("architectures:", ", ".join(architectures()))
    print("embedded datasets:", ", ".join(EMBEDDED_DATASETS), "(plus any TFDS catalog name)")
    print("your own data: data.source=csv|npz|images|text|audio data.path=FILE_OR_FOLDER (see the README)")
    print("shipped experiments:", ", ".join(shipped_experiments()))
    return 0


def _configs(args: argparse.Namespace):
    from pipelines import api

    return api.load(args.experiment, args.overrides)


def _prepare(args: argparse.Namespace) -> int:
    from pipelines import api, tracking

    for config in _configs(args):
        result = api.prepare(config)
        sizes = ", ".join(f"{name} {size}" for name, size in result.dataset.sizes().items())
        print(f"prepared {config.data.name} ({sizes}; digest {result.dataset.digest}) in run {result.run_id}")
        print(f"  {tracking.run_url(tracking.get_run(result.run_id))}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from pipelines import api, tracking
    from pipelines.config import ConfigError

    if args.resume and (args.experiment or args.overrides):
        raise ConfigError("--resume continues a run with its own config; give no -e and no overrides")
    if not args.resume and not args.experiment:
        raise ConfigError("train needs -e EXPERIMENT (or --resume TRAIN_RUN_ID)")
    if args.resume:
        result = api.resume_train(args.resume)
        print(f"resumed and finished train run {result.run_id}; model: {result.model_uri}")
        return 0
    for config in _configs(args):
        result = api.train(config)
        final = {name: values[-1] for name, values in result.history.items()}
        shown = ", ".join(f"{name} {value:.4f}" for name, value in final.items())
        print(f"trained {config.name} in run {result.run_id}: {shown}")
        print(f"  model: {result.model_uri}")
        print(f"  {tracking.run_url(tracking.get_run(result.run_id))}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from pipelines import api

    result = api.evaluate(args.run)
    shown = ", ".join(f"{name} {value:.4f}" for name, value in result.metrics.items())
    print(f"evaluated train run {args.run} in run {result.run_id}: {shown}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from pipelines import api

    result = api.export(args.run, args.out, register=args.register)
    print(
        f"exported train run {args.run} to {result.path} (parity {result.parity:.2g}) in run {result.run_id}"
    )
    if result.registered_version:
        print(f"registered as {args.register!r} version {result.registered_version}")
    return 0


def _promote(args: argparse.Namespace) -> int:
    from pipelines import registry, tracking

    tracking.configure()
    try:
        print(registry.promote(args.name, args.version))
    except registry.PromotionRefused as refusal:
        print(f"deeparch: not promoted: {refusal}", file=sys.stderr)
        return EXIT_FAILURE
    return 0


def _run(args: argparse.Namespace) -> int:
    from pipelines import api, cache, tracking
    from pipelines.progress import Progress

    progress = Progress()  # the time so far counts from here
    cache.forced_stages(args.force or ())  # a misspelt stage fails before any work
    configs = _configs(args)
    if args.out is not None and len(configs) > 1:
        from pipelines.config import ConfigError

        raise ConfigError(f"--out names one folder but {args.experiment!r} holds {len(configs)} experiments")
    progress.total = len(configs)
    results = []
    for config in configs:
        progress.start(config.name)
        results.append(api.run(config, out=args.out, force=args.force or (), progress=progress))
    print()
    print(_summary_table(results))
    print()
    experiments = sorted({tracking.get_run(r.run_id).info.experiment_id for r in results})
    if tracking.is_tracking_server():
        print("Runs in the tracking server's UI:")
    else:
        print(f"Runs in the MLflow UI (start it with `deeparch ui`, or `{' '.join(tracking.ui_command())}`):")
    if len(experiments) > 1:
        side_by_side = tracking.compare_experiments_url(experiments)
        print(f"  all {len(experiments)} experiments, pipeline runs only: {side_by_side}")
    for experiment in experiments:
        print(f"  {tracking.experiment_url(experiment)}")
    return 0


def _summary_table(results) -> str:
    rows = [("run", "architecture", "dataset", RESULT_COLUMN, "export path")]
    for result in results:
        rows.append(
            (
                result.run_id,
                result.config.architecture,
                result.config.data.name,
                _headline(result.evaluated.metrics),
                str(result.exported.path),
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _headline(metrics: dict[str, float]) -> str:
    """The numbers that say how good a run is, by task: accuracy; RMSE beside the naive forecast's;
    MSE and MAE; a GAN's conditional accuracy and Fréchet ratio (by the evaluator classifier), or
    that they were withheld."""
    if "test_accuracy" in metrics:
        return f"accuracy {metrics['test_accuracy']:.4f}"
    if "frechet_ratio" in metrics:
        shown = [f"Fréchet ratio {metrics['frechet_ratio']:.2f}"]
        if "conditional_accuracy" in metrics:
            shown.insert(0, f"conditional accuracy {metrics['conditional_accuracy']:.4f}")
        return ", ".join(shown)
    if "evaluator_skill" in metrics:  # a GAN whose judge could not judge (pipelines.gan_evaluation)
        return f"scores withheld (evaluator skill {metrics['evaluator_skill']:.2f})"
    if "test_naive_rmse" in metrics:
        return f"RMSE {metrics['test_rmse']:.4g} (naive forecast {metrics['test_naive_rmse']:.4g})"
    if "test_mse" in metrics:
        return f"MSE {metrics['test_mse']:.4g}, MAE {metrics['test_mae']:.4g}"
    return "-"


def _sweep(args: argparse.Namespace) -> int:
    from pipelines import api, compare, tracking

    result = api.sweep(args.experiment, args.overrides, random=args.random, seed=args.seed)
    rows = [
        [o.combination.label, o.run_id or "-", o.status, _headline(o.metrics) if o.metrics else "-"]
        for o in result.outcomes
    ]
    print()
    print(compare.render_table(["combination", "run", "status", RESULT_COLUMN], rows))
    print()
    sweep_run = tracking.get_run(result.run_id)
    print(f"sweep run {result.run_id}: {tracking.run_url(sweep_run)}")
    print(f"  runs table: {tracking.experiment_url(sweep_run.info.experiment_id)}")
    print(f"  compare:    deeparch compare --sweep {result.run_id}")
    if result.failed:
        print(
            f"deeparch: {len(result.failed)} of {len(result.outcomes)} combinations failed; "
            "the same command runs them again and skips the finished ones",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    return 0


def _tune(args: argparse.Namespace) -> int:
    from pipelines import api, compare, tracking
    from pipelines import tune as tuning

    result = api.tune(
        args.experiment,
        args.overrides,
        trials=args.trials,
        timeout=args.timeout,
        sampler=args.sampler,
        pruner=args.pruner,
        study=args.study,
        storage=args.storage,
    )
    plan = result.plan
    print()
    print(compare.render_table(["trial", "state", plan.metric, "values", "pipeline run"], result.rows))
    print()
    counts = ", ".join(f"{count} {state}" for state, count in result.counts.items() if count)
    tune_run = tracking.get_run(result.run_id)
    print(f"study {plan.study_name}: {counts or 'no trials'}")
    if result.best_trial is not None:
        shown = " ".join(tuning.as_overrides(result.best_params))
        print(f"best trial {result.best_trial}: {plan.metric} {result.best_value:.4f} with {shown}")
        print(f"  best config: {result.best_config_path}")
        print(f"  reproduce:   deeparch run -e {result.best_config_path}")
    print(f"tune run {result.run_id}: {tracking.run_url(tune_run)}")
    print(f"  compare:    deeparch compare --tune {result.run_id}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from pipelines import api, compare

    comparison = api.compare(args.experiment, sweep=args.sweep, tune=args.tune, metric=args.metric)
    print(compare.render(comparison, args.format))
    # CSV stays machine-readable on stdout; the notes go to stderr.
    notes = sys.stderr if args.format == "csv" else sys.stdout
    print(file=notes)
    print(compare.describe(comparison), file=notes)
    print(compare.ui_links(comparison, args.format), file=notes)
    return 0


def _ui(args: argparse.Namespace) -> int:
    from pipelines import server, tracking

    command = tracking.ui_command()
    command[command.index("--port") + 1] = str(args.port)
    uri = command[command.index("--backend-store-uri") + 1]
    print(f"MLflow UI for {uri}: http://127.0.0.1:{args.port}/#/experiments (Ctrl-C stops it)")
    binary = Path(sys.executable).with_name("mlflow")
    if binary.exists():
        command[0] = str(binary)
    return server.run_until_stopped(command, None, "MLflow UI")


def _server(args: argparse.Namespace) -> int:
    from pipelines import server

    settings = server.settings_from(
        args.backend_store_uri,
        artifacts_destination=args.artifacts_destination,
        host=args.host,
        port=args.port,
        workers=args.workers,
        admin_username=args.admin_username,
        default_permission=args.default_permission,
        allowed_hosts=args.allowed_hosts,
    )
    return server.serve(settings)


def _is_user_facing(error: Exception) -> bool:
    """Errors whose message is the whole story for a user; others are bugs and keep a traceback."""
    from pipelines import tracking

    # A tracking server's 401/403 anywhere in a run: the login or the permission is the story.
    if isinstance(error, tracking.TrackingAccessError) or tracking.access_error(error) is not None:
        return True
    from pipelines.data import DataError
    from pipelines.stages.export import ExportParityError
    from pipelines.stages.train import NonFiniteLossError

    return isinstance(error, DataError | ExportParityError | NonFiniteLossError)


def entry() -> None:
    """The `deeparch` command: `main()`, then an exit that skips Python's finalisation.

    Once TensorFlow is loaded, finalising the interpreter (its graphs and C++ objects torn down
    one by one) takes about 2 s of every command and writes nothing a run needs. The exit is
    registered with atexit before any library is imported, so it runs after every handler they
    register (atexit runs the last registered first): MLflow's, which ends open runs and flushes
    asynchronous logging, and logging's, which flushes its handlers.
    """
    status = EXIT_FAILURE  # an exception escaping main(): Python prints it, then exits with 1

    def exit_now() -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)

    atexit.register(exit_now)
    try:
        status = main()
    except SystemExit as stop:  # argparse's usage errors (2) and --help (0)
        status = stop.code if isinstance(stop.code, int) else EXIT_FAILURE if stop.code else 0
        raise
    sys.exit(status)


if __name__ == "__main__":
    entry()
