"""``python -m chatmaid_async``: the ``chatmaid`` command."""

from chatmaid_async.cli import main

if __name__ == "__main__":
    main()
