"""The store: SQL (in ``sql/``), migrations, and one typed function per named query."""
