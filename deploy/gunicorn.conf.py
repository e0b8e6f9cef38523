"""The image's gunicorn configuration file (deploy/Dockerfile CMD): the settings themselves live in the installed
package (server/run/gunicorn_conf.py), which `hemoptysis-cds serve` loads too, so the two cannot drift."""
from server.run.gunicorn_conf import *  # noqa: F401,F403 - gunicorn reads this file's module globals
