"""Security: trusted clients, client JWTs, the call guard (authentication + audit per call), URL scope, FHIR-server access."""
