"""The deployer terminal UI (Textual): live deployments, history and versions, read from the store.

Ways in (see :mod:`tui.app`): :func:`run_watch` (``deploy watch``), :func:`run_browser`
(``deploy tui``) and :func:`run_push_ui` (``deploy push --tui``).
"""

from __future__ import annotations

from tui.app import DeployerApp, run_browser, run_push_ui, run_watch

__all__ = ["DeployerApp", "run_browser", "run_push_ui", "run_watch"]
