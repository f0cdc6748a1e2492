"""``python -m deployer`` is the ``deploy`` command."""

from deployer.entry import main

main()
