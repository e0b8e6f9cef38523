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
    from pathlib import Path

    from .replay import replay
    from .replay_target import HttpTarget, InProcessTarget

    if args.bearer and not args.url:
        print("--bearer is only sent with --url (in-process replay runs in development auth mode)", file=sys.stderr)
        return 2
    target = HttpTarget(args.url, args.bearer) if args.url else InProcessTarget()
    try:
        report = replay([Path(p) for p in args.paths], target, update=args.update)
    finally:
        target.close()
    return 0 if report.ok else 1


def _request_from_bundle(args: argparse.Namespace) -> int:
    import json
    from datetime import datetime, timezone
    from pathlib import Path

    from hooks import SERVICES

    from . import bundle_to_request as btr

    try:
        read = btr.read_paths([Path(p) for p in args.bundles])
        groups = btr.by_patient(read.resources)
        if args.patient:
            groups = {args.patient: groups.get(args.patient, [])}
        out = Path(args.out) if args.out else None
        per_patient_files = out is not None and (out.is_dir() or args.out.endswith("/"))
        if not groups:
            raise btr.BundleError("no resource in the input is about a patient")
        if len(groups) > 1 and not per_patient_files:
            listed = ", ".join(sorted(groups)[:10]) + (" ..." if len(groups) > 10 else "")
            raise btr.BundleError(f"{len(groups)} patients in the input ({listed}): pick one with --patient, "
                                  "or give --out DIRECTORY/ for one request each")
        now = datetime.now(timezone.utc)
        for patient_id, resources in sorted(groups.items()):
            request, left_out = btr.build_request(
                resources, patient_id, hook=args.hook, services=SERVICES.values(), service_id=args.service,
                user_id=args.user, instant=btr.reference_instant(args.reference_instant, resources, now),
                title=f"{', '.join(Path(b).name for b in args.bundles)}: patient {patient_id}")
            for reason in [*read.skipped, *left_out]:
                print(f"note: {reason}", file=sys.stderr)
            text = json.dumps(request, indent=2, ensure_ascii=False) + "\n"
            if out is None:
                sys.stdout.write(text)
            else:
                target = out / f"{Path(args.bundles[0]).stem}.{patient_id}.json" if per_patient_files else out
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
                print(f"wrote {target}", file=sys.stderr)
    except btr.BundleError as error:
        print(f"request-from-bundle: {error}", file=sys.stderr)
        return 2
    return 0


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
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
