"""What every service's cards are made of, one concern per module: `builder` (the card object and the answer),
`markdown` (the sections that list values, gaps and records not used), `clinician_words` (the words a card may
show), `summary` (the summary that fits), `fhir_orders` (the FHIR R4 orders), `suggestions` (the CDS Hooks
suggestions carrying them), `links`, `offers` (which orders, override reasons and links a card gets),
`answer_guard` (no order one card advises against) and `topics` (the `source.topic` codes)."""
