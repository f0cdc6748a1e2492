"""Reusable widgets of the deployer TUI; each carries its own DEFAULT_CSS."""
