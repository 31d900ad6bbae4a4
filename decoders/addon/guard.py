"""What every addon class shares: no exception leaves a hook, and option errors name the value."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, Concatenate, Protocol

from mitmproxy import ctx, exceptions


class Reporter(Protocol):
    def internal_error(self, hook: str, args: tuple[Any, ...], error: Exception) -> None: ...


class Feature(Protocol):
    """An addon class of mutecheck: it reports its failures through the shared recorder."""

    @property
    def recorder(self) -> Reporter: ...


def guarded[S: Feature, **P, R](
    hook: Callable[Concatenate[S, P], R],
) -> Callable[Concatenate[S, P], R | None]:
    """Run a hook; an exception becomes a warning event and the flow goes on untouched."""

    @functools.wraps(hook)
    def run(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R | None:
        try:
            return hook(self, *args, **kwargs)
        except Exception as error:  # the proxy must keep working whatever a body holds
            self.recorder.internal_error(hook.__name__, args, error)
            return None

    return run


def options_error(message: str) -> exceptions.OptionsError:
    return exceptions.OptionsError(message)  # type: ignore[no-untyped-call]


def check_choices(updated: set[str], names: Iterable[str]) -> None:
    """OptionsError when one of these options, if updated, holds a value outside the
    ``choices=`` it was declared with: mitmproxy (12) shows the choices in its help but accepts
    any string, from ``--set`` and from the console alike. The choices are read from the
    declaration, not written again."""
    declared = dict(ctx.options.items())  # type: ignore[no-untyped-call]
    for name in names:
        if name not in updated:
            continue
        choices = declared[name].choices
        value = getattr(ctx.options, name)
        if choices and value not in choices:
            raise options_error(f"{name} {value!r} is not one of {', '.join(choices)}")
