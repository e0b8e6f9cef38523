"""WSGI entry point for gunicorn (deploy/gunicorn.conf.py): `gunicorn -c deploy/gunicorn.conf.py server.wsgi:app`."""
from .app import create_app

app = create_app()
