"""Benchmark of the patient-view call: in-process latency against the bare `json` parse of the same body, and
throughput on loopback through the production server (gunicorn). Run it with `hemoptysis-cds bench`."""
