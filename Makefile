# The two fresh-machine commands from the README.
.PHONY: demo test setup

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/sortcore demo

test:
	bash scripts/test.sh
