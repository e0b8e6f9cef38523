"""The process: WSGI entry, gunicorn configuration and worker, JSON logging, garbage-collector tuning."""
