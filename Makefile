# wint3r_ros: the README's commands. Everything runs inside the environment of scripts/env.sh.
SHELL := /bin/bash
ENV := source scripts/env.sh &&
PYTEST_ARGS ?=

.PHONY: setup test demo clean help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/'

setup:  ## create .venv, install ROS 2 Jazzy wheels + torch + deps, colcon build (idempotent)
	@bash scripts/setup.sh

test: setup  ## set up, then run the whole test suite
	@$(ENV) python -m pytest $(PYTEST_ARGS)

demo: setup  ## synthetic 3-camera bag -> live nodes over DDS -> report folder
	@$(ENV) bash scripts/demo.sh

clean:  ## remove the environment and build outputs
	rm -rf "$$(realpath .venv 2>/dev/null)" .venv build install log
