"""The one exception type users see: a one-line message saying what was wrong and what to do."""


class EdgekitError(Exception):
    """A problem with the user's input or environment, reported without a traceback.

    The message is a single line: what was wrong, then what to do about it.
    """

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class UnsupportedError(EdgekitError):
    """An op or attribute edgekit cannot convert."""

    def __init__(self, what: str, layer: str, supported: str):
        super().__init__(f"unsupported {what} in layer '{layer}'; supported: {supported}")
