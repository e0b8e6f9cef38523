"""WSGI entry point for gunicorn (deploy/gunicorn.conf.py): `gunicorn -c deploy/gunicorn.conf.py server.run.wsgi:app`."""
import logging

from server.config import Settings
from server.http.app import create_app
from server.run.logjson import configure_logging

_settings = Settings.from_env()
if _settings.log_format == "json":
    configure_logging(logging.INFO)
app = create_app(_settings)
