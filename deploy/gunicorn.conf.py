"""gunicorn settings for production. Every value can be overridden by a HEMOPTYSIS_CDS_* variable."""
import multiprocessing
import os

bind = f"{os.environ.get('HEMOPTYSIS_CDS_HOST', '0.0.0.0')}:{os.environ.get('HEMOPTYSIS_CDS_PORT', '8080')}"
# CPU-bound request handling: one sync worker per core is the throughput optimum on this workload.
workers = int(os.environ.get("HEMOPTYSIS_CDS_WORKERS", multiprocessing.cpu_count()))
worker_class = "sync"
# An EHR waits on the answer; a request taking longer than this is a bug, not load.
timeout = 30
graceful_timeout = 20
keepalive = 5
# Access logs would carry URLs only (no bodies), but the service logs its own structured lines instead.
accesslog = None
errorlog = "-"
# Recycle workers now and then to bound memory growth from any leak.
max_requests = 20000
max_requests_jitter = 2000
forwarded_allow_ips = os.environ.get("HEMOPTYSIS_CDS_FORWARDED_ALLOW_IPS", "127.0.0.1")
# No runtime-control socket: nothing to administer at run time, and one less way in.
control_socket_disable = True

# Metrics (server/metrics.py): every worker writes prometheus-client's multiprocess files, so /metrics sums them;
# the directory is made here, in the master, before any worker starts.
from server.config import Settings  # noqa: E402
from server import metrics as _metrics  # noqa: E402

if Settings.from_env().metrics_enabled:
    _metrics.prepare_multiprocess_dir()
    child_exit = _metrics.worker_exited
