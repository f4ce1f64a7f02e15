"""The SDK adapters: each builds the scenarios' workflows with its SDK and runs a worker."""
