"""Mirror's nameko services: central services, the per-machine agent and the runner."""
