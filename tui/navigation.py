"""Requests to show another screen: screens post these up, the app decides what to push.

Screens never import one another; the app is the one place that knows them all.
"""

from __future__ import annotations

from textual.message import Message


class OpenDeployment(Message):
    """Show one deployment as the live screen shows it (frozen once it has finished)."""

    def __init__(self, deployment_id: str) -> None:
        super().__init__()
        self.deployment_id = deployment_id


class OpenHost(Message):
    """Show one host's part in a deployment: its steps, exit statuses and output."""

    def __init__(self, deployment_id: str, host: str) -> None:
        super().__init__()
        self.deployment_id = deployment_id
        self.host = host


class OpenHistory(Message):
    def __init__(self, app: str, environment: str) -> None:
        super().__init__()
        self.app_name = app
        self.environment = environment


class OpenVersions(Message):
    def __init__(self, app: str, environment: str) -> None:
        super().__init__()
        self.app_name = app
        self.environment = environment
