"""`python -m demnistify`: the `demnistify` command."""

from demnistify.cli import run

if __name__ == "__main__":
    run()
