"""The ``lowshot`` command (glue only: argument parsing and printing)."""
