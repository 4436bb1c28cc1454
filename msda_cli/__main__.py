"""`python -m msda_cli` (and `torchrun -m msda_cli`) runs the command line."""

from msda_cli.cli import main

if __name__ == "__main__":
    main()
