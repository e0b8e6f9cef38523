"""Command line: `hemoptysis-cds serve` (gunicorn, the production server) and the developer tools."""
from __future__ import annotations

import argparse
import logging
import sys

from .config import Settings
from .logjson import configure_logging


GUNICORN_JSON_LOGGING = {
    "version": 1, "disable_existing_loggers": False,
    "formatters": {"json": {"()": "server.logjson.JsonLineFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
    "root": {"level": "INFO", "handlers": ["console"]},
    "loggers": {"gunicorn.error": {"level": "INFO", "handlers": ["console"], "propagate": False},
                "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False}},
}


def _serve(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    from cql_equivalents.terminology import TerminologyError, load_site_terminology
    try:  # checked here, before any worker starts: a map the engine cannot honour stops the service
        load_site_terminology(settings.concept_map_file)
    except TerminologyError as error:
        print(f"hemoptysis-cds: not starting: {error}", file=sys.stderr, flush=True)
        return 2
    if settings.log_format == "json":
        configure_logging(logging.INFO)  # JSON lines, scrubbed of tokens (server/logjson.py)
    else:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.dev:
        from .app import create_app
        create_app(settings).run(host=settings.host, port=settings.port, debug=False)
        return 0
    from gunicorn.app.base import BaseApplication

    class _Gunicorn(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{settings.host}:{settings.port}")
            self.cfg.set("workers", settings.workers)
            self.cfg.set("timeout", 30)
            self.cfg.set("accesslog", None)
            # no runtime-control socket: nothing to administer at run time, one less way in, and parallel
            # instances (tests, several services on a host) would otherwise share $HOME/.gunicorn/gunicorn.ctl
            self.cfg.set("control_socket_disable", True)
            if settings.log_format == "json":  # gunicorn's own lines as JSON too
                self.cfg.set("logconfig_dict", GUNICORN_JSON_LOGGING)

        def load(self):
            from .app import create_app
            return create_app(settings)

    print(f"hemoptysis-cds serving on http://{settings.host}:{settings.port}/cds-services "
          f"({settings.workers} workers, database {settings.database_url.split('://')[0]}, "
          f"authentication {'OFF (development)' if settings.development_auth else 'required'})", flush=True)
    _Gunicorn().run()
    return 0


def _replay(args: argparse.Namespace) -> int:
    from .replay import command
    return command(args.paths, url=args.url, bearer=args.bearer, update=args.update, jwt_key=args.jwt_key,
                   jwt_issuer=args.jwt_issuer, jwt_kid=args.jwt_kid, jwt_jku=args.jwt_jku)


def _request_from_bundle(args: argparse.Namespace) -> int:
    from .bundle_to_request import command
    return command(args.bundles, hook=args.hook, patient=args.patient, service=args.service, user=args.user,
                   reference=args.reference_instant, out=args.out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hemoptysis-cds", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the CDS Hooks API (host/port/config from HEMOPTYSIS_CDS_* variables)")
    serve.add_argument("--dev", action="store_true", help="Flask's single-process server instead of gunicorn")
    serve.set_defaults(run=_serve)

    replay = commands.add_parser("replay", help="replay hook request files and compare the cards with their goldens")
    replay.add_argument("paths", nargs="+", metavar="PATH", help="request files or directories of them")
    replay.add_argument("--url", help="a running server (http://host:port); default: this service in-process")
    replay.add_argument("--bearer", metavar="TOKEN", help="with --url: sent as 'Authorization: Bearer TOKEN'")
    replay.add_argument("--jwt-key", metavar="PEM", help="with --url: sign a fresh client JWT per call with this key")
    replay.add_argument("--jwt-issuer", metavar="ISS", help="the JWT iss (the client's id in the clients file)")
    replay.add_argument("--jwt-kid", metavar="KID", help="the JWT header kid")
    replay.add_argument("--jwt-jku", metavar="URL", help="optional JWT header jku")
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

    bench = commands.add_parser("bench", help="benchmark: in-process latency vs bare json parse, gunicorn throughput")
    from bench.run import add_arguments as bench_arguments, main as bench_main
    bench_arguments(bench)
    bench.set_defaults(run=bench_main)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
