"""The gRPC API: thin servicers (validate, call the engine, convert)."""
