"""``make chaos``: a soak run of a sweep while a fault injector breaks the mesh under it."""
