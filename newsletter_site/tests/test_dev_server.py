"""`make run HOST=... PORT=...` tells the truth: every absolute link follows the address served."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[2]


def make_dry_run(target: str, tmp_path, *args, env=None) -> str:
    """The commands ``make TARGET ARGS`` would run, reading tmp_path/.env instead of the clone's."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    clean_env = {k: v for k, v in os.environ.items() if k not in ("BASE_URL", "HOST", "PORT")}
    result = subprocess.run(
        ["make", "-n", target, f"ENV_FILE={tmp_path / '.env'}", *args],
        cwd=ROOT,
        env={**clean_env, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_make_run_links_to_the_host_and_port_it_serves(tmp_path):
    commands = make_dry_run("run", tmp_path, "HOST=127.0.0.2", "PORT=9000")

    honcho = next(line for line in commands.splitlines() if "honcho start" in line)
    assert 'BASE_URL="http://127.0.0.2:9000"' in honcho
    assert 'BASE_URL="http://127.0.0.2:9000"' in next(line for line in commands.splitlines() if "load_demo" in line)


def test_make_run_on_all_interfaces_links_to_loopback(tmp_path):
    commands = make_dry_run("run", tmp_path, "HOST=0.0.0.0", "PORT=9000")

    assert 'BASE_URL="http://127.0.0.1:9000"' in commands
    assert "0.0.0.0:9000" not in commands.replace("HOST=0.0.0.0 PORT=9000", "")


def test_a_given_base_url_wins_over_host_and_port(tmp_path):
    from_env = make_dry_run("run", tmp_path, "PORT=9000", env={"BASE_URL": "https://news.example.org"})
    (tmp_path / ".env").write_text("BASE_URL=https://from-dotenv.example.org\n")
    from_dotenv = make_dry_run("run", tmp_path, "PORT=9000")

    assert 'BASE_URL="https://news.example.org"' in from_env
    assert 'BASE_URL="https://from-dotenv.example.org"' in from_dotenv


def test_serve_prod_runs_gunicorn_with_production_settings_on_loopback_after_collectstatic(tmp_path):
    commands = make_dry_run("serve-prod", tmp_path, "PORT=8142").splitlines()

    collect = next(i for i, line in enumerate(commands) if "collectstatic" in line)
    gunicorn = next(i for i, line in enumerate(commands) if "gunicorn" in line)
    assert collect < gunicorn
    assert "DJANGO_SETTINGS_MODULE=newsletter_site.settings.production" in commands[gunicorn]
    assert '--bind "127.0.0.1:8142"' in commands[gunicorn]
    assert 'BASE_URL="http://127.0.0.1:8142"' in commands[gunicorn]


def test_run_banner_prints_the_base_url(settings, capsys):
    settings.BASE_URL = "http://127.0.0.2:9000"
    call_command("run_banner")

    assert "Site:         http://127.0.0.2:9000/" in capsys.readouterr().out
