"""How sizes and durations are written for a person: the status line, the plan and the summary say them alike."""

from __future__ import annotations


def size_text(count: float) -> str:
    """Bytes in decimal units, e.g. ``4.00 GB``."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:,.2f} {unit}"
    return f"{count:,.0f} B"


def duration_text(seconds: float) -> str:
    """Whole seconds as ``45s``, ``1m30s`` or ``2h05m``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
