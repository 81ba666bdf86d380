"""`python -m harness.executors.docker start-engine | build-image`: prepare a machine for the docker executor."""
import sys

from harness.errors import UsageError
from harness.executors.docker.engine import client, start_engine
from harness.executors.docker.image import ensure_base_image


def main(argv=None) -> int:
    """`start-engine`: start dockerd unless one answers; `build-image`: build the base image
    (`--include python3`: with Debian's interpreter in it)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m harness.executors.docker")
    parser.add_argument("action", choices=["start-engine", "build-image"])
    parser.add_argument("--include", action="append", default=[], metavar="PACKAGE",
                        help="build-image: add a Debian package, e.g. python3 (an image with its own interpreter)")
    args = parser.parse_args(argv)
    try:
        if args.action == "start-engine":
            proc = start_engine()
            print(f"dockerd started (pid {proc.pid})" if proc else "a Docker engine is already running")
        else:
            print(ensure_base_image(client(), log=lambda text: print(text, file=sys.stderr),
                                    include=tuple(args.include)))
    except UsageError as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
