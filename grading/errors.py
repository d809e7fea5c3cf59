"""The one error a user can cause: bad input, named by file, line and field."""

from __future__ import annotations


class InputError(Exception):
    """Bad input. The CLI prints it and exits 2; the API answers with its text."""

    def __init__(
        self, path: str, message: str, *, line: int | None = None, field: str | None = None
    ) -> None:
        self.path = path
        self.line = line
        self.field = field
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}, line {self.line}"
        if self.field:
            where += f", field {self.field}"
        return f"{where}: {self.message}"
