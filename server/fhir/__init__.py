"""FHIR access: the bounded HTTP GET, the FHIR client, prefetch resolution, and the fetch budget."""
