"""Developer tools: replay of request files against goldens, request-from-bundle, metrics scrape."""
