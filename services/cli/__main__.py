"""``python -m services.cli``: the ``mirror`` command (``mirror up`` starts its parts so)."""

from services.cli.main import main

main()
