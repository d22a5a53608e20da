"""MONAI Label's token check made to work: 0.8.5 calls ``jwt.decode`` without ``algorithms``, which PyJWT 2 (the
version it requires) refuses for every token, so with ``MONAI_LABEL_AUTH_ENABLE=true`` even a valid token gets
``401 Could not validate credentials``.

:func:`fix_token_algorithms` gives MONAI Label's auth module a ``jwt`` whose ``decode`` names the algorithms (RS256,
Keycloak's default, unless told otherwise); everything else (the realm's public key, the expiry check, the roles)
stays MONAI Label's. The app calls it when it starts with authentication on; nothing happens at import.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Sequence

__all__ = ["DEFAULT_ALGORITHMS", "JwtWithAlgorithms", "fix_token_algorithms"]

DEFAULT_ALGORITHMS: tuple[str, ...] = ("RS256",)


class JwtWithAlgorithms:
    """The ``jwt`` module with ``decode(..., algorithms=<these>)`` unless the caller names them."""

    def __init__(self, module: ModuleType, algorithms: Sequence[str]) -> None:
        if not algorithms:
            raise ValueError("name at least one token algorithm, e.g. RS256")
        self._module = module
        self.algorithms = [str(a) for a in algorithms]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)

    def decode(self, token: str, key: Any = "", *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("algorithms", self.algorithms)
        return self._module.decode(token, key, *args, **kwargs)


def fix_token_algorithms(algorithms: Sequence[str] = DEFAULT_ALGORITHMS) -> JwtWithAlgorithms:
    """Make MONAI Label's ``monailabel.endpoints.user.auth`` decode tokens with ``algorithms``; returns what it now
    uses (calling it again replaces it)."""
    import jwt
    from monailabel.endpoints.user import auth

    fixed = JwtWithAlgorithms(jwt, algorithms)
    auth.jwt = fixed
    return fixed
