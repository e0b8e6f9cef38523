"""The one gunicorn configuration of the service: `hemoptysis-cds serve` loads this module, and so does the image
(deploy/gunicorn.conf.py imports it; deploy/Dockerfile). Every value comes from a HEMOPTYSIS_CDS_* variable through server.config.Settings.

Worker model (issue 11 item 6): gthread workers, each with a bounded pool of threads, run by
server.run.gunicorn_worker.BoundedThreadWorker, which reads each request without a thread (a client that never
finishes its headers or body holds a file descriptor, never a thread, and gets a 408 when its time runs out) and
answers gunicorn's own errors as OperationOutcomes. A slow FHIR server holds at most the call's FHIR deadline
(HEMOPTYSIS_CDS_FHIR_DEADLINE_SECONDS) of one thread. Within a worker one call computes at a time and lets go
while it waits on a FHIR server (server/run/cpu_slot.py): threads are for waiting, workers (one per core) for
computing. In production a buffering reverse proxy sits in front as well (deploy/nginx.conf).
"""
from server.config import Settings

_settings = Settings.from_env()
# JSON lines on stderr (server/run/logjson.py), gunicorn's own loggers included; access lines off
_JSON_LOGGING = {
    "version": 1, "disable_existing_loggers": False,
    "formatters": {"json": {"()": "server.run.logjson.JsonLineFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
    "root": {"level": "INFO", "handlers": ["console"]},
    "loggers": {"gunicorn.error": {"level": "INFO", "handlers": ["console"], "propagate": False},
                "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False}},
}

bind = f"{_settings.host}:{_settings.port}"
workers = _settings.workers  # one per core: request handling is CPU-bound once the data are in
worker_class = "server.run.gunicorn_worker.BoundedThreadWorker"
threads = _settings.threads
worker_connections = 1000  # open connections per worker (idle and gathering ones included), then refused
# The heartbeat limit: in a gthread worker the main loop beats while threads work, so this only catches a
# worker whose main loop is stuck. Requests are bounded by the FHIR deadline and the body cap instead.
timeout = 30
graceful_timeout = 20
keepalive = 5
# gunicorn's request-size limits (its 400 / 414 / 431 are answered as OperationOutcomes by the worker)
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190
# Access logs would carry URLs only (no bodies), but the service logs its own structured lines instead.
accesslog = None
errorlog = "-"
logger_class = "server.run.gunicorn_worker.QuietAccessLogger"
if _settings.log_format == "json":
    logconfig_dict = _JSON_LOGGING
# Recycle workers now and then to bound memory growth from any leak.
max_requests = 20000
max_requests_jitter = 2000
forwarded_allow_ips = __import__("os").environ.get("HEMOPTYSIS_CDS_FORWARDED_ALLOW_IPS", "127.0.0.1")
# No runtime-control socket: nothing to administer at run time, one less way in, and parallel instances (tests,
# several services on a host) would otherwise share $HOME/.gunicorn/gunicorn.ctl.
control_socket_disable = True


def post_worker_init(worker) -> None:
    # the first answer made before any EHR waits for it (server/run/warm_up.py), then the garbage collector tuned
    # per worker once its app is loaded and warm, never by create_app (server/run/runtime.py)
    from server.run.runtime import tune_garbage_collector
    from server.run.warm_up import warm_up_app
    if getattr(worker.wsgi, "extensions", {}).get("hemoptysis_cds"):
        warm_up_app(worker.wsgi)
    tune_garbage_collector()


def post_request(worker, request, environ, response) -> None:
    # a full collection after a large request, so one large body's garbage does not outlive it (server/run/runtime.py)
    from server.run.runtime import collect_after_large_request
    collect_after_large_request(environ.get("CONTENT_LENGTH"))

# Metrics (server/http/metrics.py): every worker writes prometheus-client's multiprocess files, so /metrics sums them;
# the directory is made here, in the master, before any worker starts.
from server.http import metrics as _metrics  # noqa: E402

if _settings.metrics_enabled:
    _metrics.prepare_multiprocess_dir()
    child_exit = _metrics.worker_exited
