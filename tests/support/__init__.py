"""Builders shared by the tests, the fixture builder and scripts: FHIR records, JWTs, live servers, scratch databases."""
