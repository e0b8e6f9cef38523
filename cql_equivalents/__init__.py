"""The clinical logic of hemoptysis-cds as pure functions over parsed FHIR data.

Each module mirrors a CQL library kept beside it (same defines, same names). The clinical numbers live in
``data/*.toml``; every row there names its source.
"""
