"""The engine: statuses, pure transitions, definitions and their application to the store."""
