#!/usr/bin/env python
"""Django's command-line utility. Loads .env (if any) and defaults to the dev settings."""

import os
import sys
from pathlib import Path


def load_dotenv(path: Path) -> None:
    """Minimal KEY=value reader: real environment variables win over the file."""
    if not path.is_file():
        return
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        os.environ.setdefault(key.strip(), value.strip().strip("'\""))


def main():
    load_dotenv(Path(__file__).resolve().parent / ".env")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "newsletter_site.settings.dev")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
