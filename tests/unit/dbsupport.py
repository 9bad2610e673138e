"""Databases for storage unit tests: a fresh SQLite file or a private PostgreSQL database."""


def database_url(request, tmp_path):
    """A fresh database for a fixture parametrized ``sqlite``/``postgres``: its URL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/mirror.db"
    return request.getfixturevalue("pg_url")
