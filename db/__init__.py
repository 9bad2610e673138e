"""Mirror's database: SQLAlchemy models, engine set-up and migrations (central only)."""
