"""Storage: one schema for every table, the store of issued cards and feedback, the audit trail."""
