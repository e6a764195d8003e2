"""The HTTP glue: auth, bodies, responses, files, middlewares, control API, app."""
