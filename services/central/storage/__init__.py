"""Storage behind the central services: every read and write of the database and the file store."""
