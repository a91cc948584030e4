"""Text folding shared by the database and Python, so both lower-case alike."""


def lower_text(text):
    """Lower case one character at a time, each to one character (as PostgreSQL's LOWER does: 'İ'
    becomes 'i', 'Σ' at the end of a word stays 'σ'); SQLite's LOWER is replaced by this."""
    if text is None:
        return None
    return "".join(folded[0] if (folded := ch.lower()) else ch for ch in text)
