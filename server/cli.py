"""Command line: `hemoptysis-cds serve` (gunicorn, the production server) and the developer tools."""
from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import runpy
import sys
from pathlib import Path

from server.config import PREFIX, Settings
from server.run.logjson import configure_logging

GUNICORN_CONF = Path(__file__).resolve().parent / "run" / "gunicorn_conf.py"  # installed with the package


def serve_settings(args: argparse.Namespace, env=None) -> Settings:
    """The environment's settings, with --host / --port / --workers written over it: the flags go through the
    same HEMOPTYSIS_CDS_* variables, so the public URL default and deploy/gunicorn.conf.py see them too."""
    env = dict(os.environ if env is None else env)
    for flag, name in (("host", "HOST"), ("port", "PORT"), ("workers", "WORKERS")):
        value = getattr(args, flag, None)
        if value is not None:
            env[PREFIX + name] = str(value)
            os.environ[PREFIX + name] = str(value)  # gunicorn.conf.py and the workers read the environment
    return Settings.from_env(env)


def _serve(args: argparse.Namespace) -> int:
    settings = serve_settings(args)
    from cql_equivalents.terminology import TerminologyError, load_site_terminology
    try:  # checked here, before any worker starts: a map the engine cannot honour stops the service
        load_site_terminology(settings.concept_map_file)
    except TerminologyError as error:
        print(f"hemoptysis-cds: not starting: {error}", file=sys.stderr, flush=True)
        return 2
    if settings.log_format == "json":
        configure_logging(logging.INFO)  # JSON lines, scrubbed of tokens (server/run/logjson.py)
    else:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.dev:
        from server.http.app import create_app
        from server.run.runtime import tune_garbage_collector
        app = create_app(settings)
        tune_garbage_collector()
        app.run(host=settings.host, port=settings.port, debug=False)
        return 0
    from gunicorn.app.base import BaseApplication

    from server.http import metrics
    # the workers' metric files: set before any worker imports prometheus_client (multiprocess mode)
    own_metrics_dir = settings.metrics_enabled and not os.environ.get(metrics.MULTIPROC_ENV)
    metrics_dir = metrics.prepare_multiprocess_dir() if settings.metrics_enabled else None

    class _Gunicorn(BaseApplication):
        def load_config(self):
            # the same settings the image runs (deploy/gunicorn.conf.py imports server/run/gunicorn_conf.py): one configuration, read from HEMOPTYSIS_CDS_*
            for name, value in runpy.run_path(str(GUNICORN_CONF)).items():
                if name in self.cfg.settings and value is not None:
                    self.cfg.set(name, value)

        def load(self):
            from server.http.app import create_app
            return create_app(settings)

    print(f"hemoptysis-cds serving on http://{settings.host}:{settings.port}/cds-services "
          f"({settings.workers} workers x {settings.threads} threads, database {settings.database_url.split('://')[0]}, "
          f"authentication {'OFF (development)' if settings.development_auth else 'required'})", flush=True)
    try:
        _Gunicorn().run()
    finally:
        if own_metrics_dir:  # a directory made for this run; a configured one is left where it is
            metrics.remove_multiprocess_dir(metrics_dir)
    return 0


def _replay(args: argparse.Namespace) -> int:
    from server.replay.runner import command
    return command(args.paths, url=args.url, bearer=args.bearer, update=args.update, jwt_key=args.jwt_key,
                   jwt_issuer=args.jwt_issuer, jwt_kid=args.jwt_kid, jwt_jku=args.jwt_jku)


def _request_from_bundle(args: argparse.Namespace) -> int:
    from server.replay.request_from_bundle import command
    return command(args.bundles, hook=args.hook, patient=args.patient, service=args.service, user=args.user,
                   reference=args.reference_instant, out=args.out)


def _add_jwt_arguments(parser: argparse.ArgumentParser, key_help: str) -> None:
    """The flags that sign a client JWT per call, as a registered client of the clients file does."""
    parser.add_argument("--jwt-key", metavar="PEM", help=key_help)
    parser.add_argument("--jwt-issuer", metavar="ISS", help="the JWT iss (the client's id in the clients file)")
    parser.add_argument("--jwt-kid", metavar="KID", help="the JWT header kid")
    parser.add_argument("--jwt-jku", metavar="URL", help="optional JWT header jku")


def _scrape(args: argparse.Namespace) -> int:
    from server.replay.scrape import command
    return command(args.url, jwt_key=args.jwt_key, jwt_issuer=args.jwt_issuer, jwt_kid=args.jwt_kid,
                   jwt_jku=args.jwt_jku)


def _bench(args: argparse.Namespace) -> int:
    """`bench` lives in the repository's bench/, which the production image does not ship: it is imported here,
    when the command runs, never before the arguments are parsed, so every other command works without it.
    Its own flags are parsed by its own parser (bench/run.py add_arguments)."""
    if importlib.util.find_spec("bench") is None or importlib.util.find_spec("bench.run") is None:
        return _no_bench()
    from bench.run import add_arguments as bench_arguments, main as bench_main
    parser = argparse.ArgumentParser(prog="hemoptysis-cds bench",
                                     description="benchmark: in-process latency vs bare json parse, gunicorn throughput")
    bench_arguments(parser)
    return bench_main(parser.parse_args(args.bench_arguments))


def _no_bench() -> int:
    print("hemoptysis-cds bench: bench/ is not installed here (the production image leaves it out); "
          "run it from a repository checkout: make bench", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hemoptysis-cds", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the CDS Hooks API (configuration from HEMOPTYSIS_CDS_* variables)")
    serve.add_argument("--host", help="address to listen on (overrides HEMOPTYSIS_CDS_HOST; default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (overrides HEMOPTYSIS_CDS_PORT; default 8080)")
    serve.add_argument("--workers", type=int, help="gunicorn workers (overrides HEMOPTYSIS_CDS_WORKERS; default: cores)")
    serve.add_argument("--dev", action="store_true", help="Flask's single-process server instead of gunicorn")
    serve.set_defaults(run=_serve)

    replay = commands.add_parser("replay", help="replay hook request files and compare the cards with their goldens")
    replay.add_argument("paths", nargs="+", metavar="PATH", help="request files or directories of them")
    replay.add_argument("--url", help="a running server (http://host:port); default: this service in-process")
    replay.add_argument("--bearer", metavar="TOKEN", help="with --url: sent as 'Authorization: Bearer TOKEN'")
    _add_jwt_arguments(replay, "with --url: sign a fresh client JWT per call with this key")
    replay.add_argument("--update", action="store_true", help="rewrite the goldens from the answers (on purpose only)")
    replay.set_defaults(run=_replay)

    from_bundle = commands.add_parser("request-from-bundle", help="build a hook request (with prefetch) from FHIR data")
    from_bundle.add_argument("bundles", nargs="+", metavar="BUNDLE", help="Bundle / resource JSON, NDJSON, or a directory")
    from_bundle.add_argument("--hook", default="patient-view", help="the hook (default patient-view)")
    from_bundle.add_argument("--patient", help="the patient id, when the data hold several patients")
    from_bundle.add_argument("--service", help="the service whose prefetch templates to fill (default: all on the hook)")
    from_bundle.add_argument("--user", default="Practitioner/request-from-bundle", help="context.userId")
    from_bundle.add_argument("--reference-instant", default="now", metavar="now|latest|none|ISO",
                             help="what replay treats as the data's 'now' (see README, Replay)")
    from_bundle.add_argument("-o", "--out", help="output file, or a directory for one request per patient (default stdout)")
    from_bundle.set_defaults(run=_request_from_bundle)

    scrape = commands.add_parser("scrape", help="print a running server's /metrics once (signing a fresh client JWT)")
    scrape.add_argument("url", metavar="URL", help="the server's base URL (http://host:port)")
    _add_jwt_arguments(scrape, "sign a fresh client JWT with this key (an audit_reader client)")
    scrape.set_defaults(run=_scrape)

    # add_help=False: `bench --help` and every bench flag go to bench's own parser, built only when it runs
    bench = commands.add_parser("bench", add_help=False,
                                help="benchmark (repository checkout only): in-process latency, gunicorn throughput")
    bench.set_defaults(run=_bench)
    args, rest = parser.parse_known_args(argv)
    if args.command == "bench":
        args.bench_arguments = rest
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
