class RuleError(ValueError):
    """A rule that cannot be used, with where it goes wrong (1-based line, 0-based column)."""

    def __init__(self, message, position=None):
        self.message = message
        self.position = position
        where = f" (line {position[0]}, column {position[1] + 1})" if position else ""
        super().__init__(f"{message}{where}")
