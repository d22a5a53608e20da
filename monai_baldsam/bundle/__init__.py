"""The Python components that the MONAI bundles' configs call (inference, evaluation, training).

The bundles themselves (configs, docs, licence) are the package data in :mod:`monai_baldsam.bundles`.
"""
