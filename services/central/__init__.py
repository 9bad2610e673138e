"""Central services: the only processes that touch the database."""
