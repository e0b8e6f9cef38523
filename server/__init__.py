"""HTTP surface, security and FHIR access of hemoptysis-cds."""
