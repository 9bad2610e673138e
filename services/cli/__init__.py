"""The ``mirror`` command: ``main.py`` parses and dispatches every command to its module."""
