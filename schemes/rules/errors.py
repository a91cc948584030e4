class RuleError(ValueError):
    """A rule that cannot be used, with where it goes wrong (1-based line, 0-based column)."""

    def __init__(self, message, position=None):
        self.message = message
        self.position = position
        where = f" (line {position[0]}, column {position[1] + 1})" if position else ""
        super().__init__(f"{message}{where}")


def character_offset(text, position):
    """The 0-based index into `text` of a (line, column) position: where an editor puts the cursor."""
    line, column = position
    lines = text.split("\n")
    return min(sum(len(previous) + 1 for previous in lines[: line - 1]) + column, len(text))
