"""Shared pytest setup: fleets and stores are plugins, each started once per session."""

pytest_plugins: list[str] = []
