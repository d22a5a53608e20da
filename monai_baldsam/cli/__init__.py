"""The ``baldsam`` command line: one module per subcommand, registered in :mod:`monai_baldsam.cli.main`."""

__all__: list[str] = []
