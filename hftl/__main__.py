"""``python -m hftl ...`` and ``accelerate launch -m hftl train ...``: the ``hftl`` command."""

from .commands import main

if __name__ == "__main__":
    raise SystemExit(main())
