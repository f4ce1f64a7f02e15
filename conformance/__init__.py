"""The conformance suite: scenarios as data, and an adapter per SDK (see README.md)."""
