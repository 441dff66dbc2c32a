"""The /api/v1 routes, one module per resource; each is parse, call a service, shape."""
