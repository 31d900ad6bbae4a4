"""``python -m decoders.cli``: the ``mutecheck`` command without its installed script."""

from decoders.cli import main

if __name__ == "__main__":  # pragma: no cover
    main(prog_name="mutecheck")  # as the installed command names itself in its messages
