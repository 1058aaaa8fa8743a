"""``python -m model_analyze``: the same CLI as the ``model-analyze`` script."""

from .cli import main

if __name__ == "__main__":
    main()
