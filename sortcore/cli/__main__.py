"""``python -m sortcore.cli``."""

from . import main

main()
