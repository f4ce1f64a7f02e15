"""Authentication and authorization: API tokens, roles, and what each role may call."""
