"""The code of the MONAI bundles; the bundles themselves (configs, docs) are the data package ``monai_baldsam.bundles``.

Two neighbours, two jobs:

* ``monai_baldsam/bundle/`` (this package, code): the components the bundle configs name with ``_target_``
  (:mod:`.inference`, :mod:`.evaluation`, :mod:`.training`), how a bundle finds its head (:mod:`.heads`: registry name
  + SHA-256, no copied weights), and the one template every bundle is generated from (:mod:`.specs`,
  :mod:`.template`, :mod:`.generate`: ``python -m monai_baldsam.bundle.generate [--check]``).
* ``monai_baldsam/bundles/`` (data): a link to the repository's top-level ``bundles/`` folder, so the generated
  bundle folders (``baldsam_polyp/configs/...``) and the metadata schema ship inside the installed package; its
  ``__init__`` lists and locates them (``list_bundles``, ``bundle_dir``, ``bundle_metadata``, ``bundle_head``).

Edit a bundle here (template or spec) and regenerate; never edit the generated configs by hand (a test compares them).
"""

__all__: list[str] = []
