"""Errors a user can fix. The CLI prints them as one clear line instead of a traceback."""


class UserError(Exception):
    """Bad input or bad configuration: the message says what is wrong and how to fix it."""


class ConfigError(UserError):
    """A run config or override is invalid; the message names the key and the allowed values."""


class DataError(UserError):
    """An annotation file, video or prediction file is malformed; the message names file, record, field."""


class VideoError(DataError):
    """A video file a run cannot use: missing, unreadable, damaged or truncated. `video` is the file,
    `problem` what is wrong with it (the message is "video '<file>' <problem>")."""

    def __init__(self, video: str, problem: str):
        super().__init__(f"video {str(video)!r} {problem}")
        self.video = str(video)
        self.problem = problem

    def __reduce__(self):  # Ray ships it between processes: rebuild it from its two fields
        return type(self), (self.video, self.problem)

    def with_hint(self, hint: str) -> "VideoError":
        """The same error with what to do about it appended (the fix depends on who reads it)."""
        return VideoError(self.video, f"{self.problem}; {hint}")
