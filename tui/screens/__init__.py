"""The screens of the deployer TUI."""
