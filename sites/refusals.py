"""What a service's refusal says to the person who asked."""


def refusal_message(error):
    """A ValidationError's messages (or any error's text) as one line for a flash message."""
    return " ".join(getattr(error, "messages", [str(error)]))
