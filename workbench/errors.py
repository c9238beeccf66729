"""The one exception type for user errors.

Anything a user can get wrong (a bad file, an unknown camera, a datasite that is
down) raises :class:`WorkbenchError` with one sentence naming the thing and the
reason. The CLI prints that sentence and exits non-zero; it never shows a traceback
for these.
"""


class WorkbenchError(Exception):
    """A user-facing error: the message names the thing and says what is wrong."""
