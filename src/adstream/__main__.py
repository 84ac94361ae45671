"""``python -m adstream`` runs the CLI."""

from adstream.cli import main

main()
