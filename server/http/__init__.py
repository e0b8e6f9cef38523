"""HTTP: the Flask app wiring and routes, request models, errors, JSON in and out, and the HTML pages."""
