"""The real Ovi engine, run on a GPU behind the mock server."""
