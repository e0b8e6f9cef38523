"""gunicorn writes no access line of its own: the service logs one structured line per call."""
from __future__ import annotations


def test_gunicorn_builds_no_access_line():
    """The configured logger drops access lines before building them (server/run/gunicorn_worker.py)."""
    from gunicorn.config import Config

    from server.run import gunicorn_conf
    from server.run.gunicorn_worker import QuietAccessLogger
    assert gunicorn_conf.logger_class == "server.run.gunicorn_worker.QuietAccessLogger"
    config = Config()
    config.set("logconfig_dict", gunicorn_conf._JSON_LOGGING)
    logger = QuietAccessLogger(config)
    built = []
    logger.atoms = lambda *args: built.append(args) or {}
    assert logger.access(None, None, {}, None) is None and built == []
