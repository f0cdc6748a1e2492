"""``python -m deployer`` is the ``deploy`` command."""

from deployer.cli import main

main()
