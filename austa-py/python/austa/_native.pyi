"""Stubs of the compiled module `austa._native` (see austa-py/src/lib.rs). Not a public API: use
`austa.Database` and `austa.Scope`."""

from typing import Final, List, Tuple

__version__: Final[str]

def operations() -> Tuple[List[str], List[str]]:
    """The registry's operation names: (scope operations, database operations)."""

class NativeError(Exception):
    """A failure of the core; `args[0]` is the failure as JSON text ({code, message, field, rows})."""

class Database:
    @staticmethod
    def open(options: str) -> Database: ...
    def call(self, op: str, args: str) -> str: ...
    def scope(self, args: str) -> Scope: ...
    def ingest(self, body: bytes) -> str: ...

class Scope:
    def call(self, op: str, args: str) -> str: ...
    def emergency(self, args: str) -> Scope: ...
