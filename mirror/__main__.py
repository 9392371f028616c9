"""`python -m mirror` is the `mirror` console script."""

from mirror.cli import main

if __name__ == "__main__":
    main()
