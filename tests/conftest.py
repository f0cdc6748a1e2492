"""Shared pytest setup: fleets and stores are plugins, each started once per session."""

pytest_plugins: list[str] = ["tests.plugins.sshd_fleet", "tests.plugins.stores", "tests.plugins.lab_fleet"]
