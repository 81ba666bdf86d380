"""`python -m harness.executors.docker start-engine | build-image`: prepare a machine for the docker executor."""
import sys

from harness.errors import UsageError
from harness.executors.docker.engine import client, start_engine
from harness.executors.docker.image import ensure_base_image


def main(argv=None) -> int:
    """`start-engine`: start dockerd unless one answers; `build-image`: build the base image
    (`--include python3`: with Debian's interpreter in it; `--python debian-trixie:3.13t`: the
    image of that recipe, see harness/executors/docker/recipes.py)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m harness.executors.docker")
    parser.add_argument("action", choices=["start-engine", "build-image"])
    parser.add_argument("--include", action="append", default=[], metavar="PACKAGE",
                        help="build-image: add a Debian package, e.g. python3 (an image with its own interpreter)")
    parser.add_argument("--python", metavar="RECIPE:VERSION",
                        help="build-image: the image of a Python recipe, e.g. debian-trixie:3.13 or debian-sid:3.14t")
    args = parser.parse_args(argv)
    try:
        if args.action == "start-engine":
            proc = start_engine()
            print(f"dockerd started (pid {proc.pid})" if proc else "a Docker engine is already running")
        elif args.python:
            from harness.executors.docker.recipes import ensure_image, parse

            print(ensure_image(client(), parse(args.python), log=_log))
        else:
            print(ensure_base_image(client(), log=_log, include=tuple(args.include)))
    except UsageError as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return 1
    return 0


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
