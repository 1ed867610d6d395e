"""``python -m sortcore``."""

from .cli import main

main()
