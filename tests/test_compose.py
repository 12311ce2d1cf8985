"""docker-compose.yml and the Dockerfile: parsed and cross-checked, then run natively.

No Docker engine runs here, so the tests compare the files with the code,
and run each service's command and health check as a local process against
a Redis on this machine.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import falcon.inspect
import pytest
import requests
from tests.deployment_files import (
    COMPOSE_FILE,
    code_variables,
    compose,
    compose_defaults,
    dockerfile_instructions,
    environment,
)
from tests.servers import (
    REPO,
    ServerProcess,
    damba_env,
    free_port,
    resolve,
    wait_until,
)

from damba import __version__, commands
from damba.config import Settings, load_settings

DAMBA_IMAGE = f"damba:{__version__}"
# Images pulled from Docker Hub, each an official image at a pinned major
# version. Anything else must be Damba's own image, built from the Dockerfile.
PULLED_IMAGES = {"redis:7-alpine"}
DEFAULT_SERVICES = {"redis", "api"}
PROFILES = {
    "asgi": {"asgi"},
    "load": {"locust-master", "locust-worker"},
    "report": {"report"},
}


def services(env: dict[str, str] | None = None) -> dict[str, dict]:
    return compose(env)["services"]


def env_example() -> dict[str, str]:
    values = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        if re.match(r"^DAMBA_[A-Z0-9_]+=", line):
            name, _, value = line.partition("=")
            values[name] = value
    return values


def seconds(duration: str) -> float:
    """Convert a compose duration such as 30s, 1m30s or 500ms to seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(number) * units[unit] for number, unit in parts)


def published(port: str) -> tuple[str, str, str]:
    """Split a compose port "HOST_IP:HOST_PORT:CONTAINER_PORT" into its parts."""
    parts = port.split(":")
    assert len(parts) == 3, (
        f"{port!r} must name the host address, host port and container port"
    )
    return parts[0], parts[1], parts[2]


# ------------------------------------------------------------ the file itself


def test_services_and_profiles():
    """`docker compose up` alone starts Redis and the API, the rest need a profile."""
    found = services()
    assert set(found) == DEFAULT_SERVICES | set().union(*PROFILES.values())
    for name in DEFAULT_SERVICES:
        assert "profiles" not in found[name], f"{name} must start without a profile"
    for profile, names in PROFILES.items():
        for name in names:
            assert found[name]["profiles"] == [profile]


def test_redis_service():
    """Redis 7 keeps an append-only file on a named volume and has a health check."""
    redis = services()["redis"]
    assert redis["image"] == "redis:7-alpine"
    command = redis["command"]
    assert command[0] == "redis-server"
    assert command[command.index("--appendonly") + 1] == "yes"
    volume, _, target = redis["volumes"][0].partition(":")
    assert target == "/data"
    assert volume in compose()["volumes"]
    assert "redis-cli ping" in " ".join(redis["healthcheck"]["test"])


def test_images_known():
    """Every service runs redis:7-alpine or Damba's image built from the Dockerfile."""
    for name, service in services().items():
        image = service["image"]
        if image in PULLED_IMAGES:
            assert "build" not in service
            continue
        assert image == DAMBA_IMAGE, f"{name}: unknown image {image!r}"
        # Built here, never pulled: a registry's "damba" could be anyone's.
        assert service["build"] == "."
        assert (REPO / service["build"] / "Dockerfile").is_file()


def test_start_order():
    """The APIs and the report wait for Redis, and Locust for the API, to be healthy."""
    found = services()
    for name in ("api", "asgi", "report"):
        assert found[name]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert found["locust-master"]["depends_on"]["api"]["condition"] == "service_healthy"
    assert found["locust-worker"]["depends_on"]["locust-master"]["condition"] == (
        "service_healthy"
    )
    for name in ("api", "asgi", "locust-master"):
        assert found[name]["healthcheck"]["test"], f"{name} needs a health check"


def test_ports_loopback_only():
    """Every published port binds to 127.0.0.1 and maps to the port the service uses."""
    found = services()
    container_ports = {"api": "8000", "asgi": "8000", "locust-master": "8089"}
    for name, service in found.items():
        for port in service.get("ports", []):
            address, _, container = published(port)
            assert address == "127.0.0.1", f"{name} publishes {port} beyond this host"
            assert container == container_ports[name], f"{name}: {port}"
    for name in ("api", "asgi"):
        assert environment(found[name])["DAMBA_PORT"] == container_ports[name]


def test_api_commands():
    """The services run the documented commands, Locust aimed at the service api."""
    found = services()
    assert found["api"]["command"] == ["damba", "serve"]
    assert found["asgi"]["command"] == ["damba", "serve", "--asgi"]
    assert found["report"]["command"][:2] == ["damba", "report"]
    for name in ("locust-master", "locust-worker"):
        assert found[name]["command"][:3] == ["locust", "-f", "locustfile.py"]
    assert "http://api:8000" in found["locust-master"]["command"]
    worker = found["locust-worker"]["command"]
    assert worker[worker.index("--master-host") + 1] == "locust-master"


def test_redis_url_names_service():
    """DAMBA_REDIS_URL points at the compose service redis on Redis's port."""
    for name in ("api", "asgi", "report"):
        assert (
            environment(services()[name])["DAMBA_REDIS_URL"] == "redis://redis:6379/0"
        )


def test_environment_variables_known():
    """Every DAMBA_ variable a service is given is one the code reads."""
    known = code_variables()
    for name, service in services().items():
        unknown = set(environment(service)) - known
        assert not unknown, f"{name} sets variables no code reads: {sorted(unknown)}"


def test_environment_values_valid():
    """The environment of each Damba service loads as valid settings."""
    for name in ("api", "asgi", "report"):
        settings = load_settings(environment(services()[name]))
        assert settings.redis_url == "redis://redis:6379/0"
        assert settings == Settings(
            redis_url=settings.redis_url, key_prefix="damba", log_format="plain"
        )


def test_defaults_match_env_example():
    """Each ${DAMBA_...:-default} in the compose file matches .env.example."""
    example = env_example()
    defaults = compose_defaults()
    assert defaults
    for name, default in defaults.items():
        assert name in example, f"{name} is missing from .env.example"
        assert example[name] == default, (
            f"{name}: compose {default!r}, .env.example {example[name]!r}"
        )


def test_replicas_configurable():
    """DAMBA_API_REPLICAS and DAMBA_LOCUST_WORKERS set the replica counts."""
    found = services({"DAMBA_API_REPLICAS": "3", "DAMBA_LOCUST_WORKERS": "5"})
    assert found["api"]["deploy"]["replicas"] == "3"
    assert found["locust-worker"]["deploy"]["replicas"] == "5"
    assert services()["api"]["deploy"]["replicas"] == "1"


def test_stop_grace_covers_shutdown():
    """docker stop waits longer than gunicorn's graceful timeout before SIGKILL."""
    for name in ("api", "asgi"):
        service = services()[name]
        timeout = int(environment(service)["DAMBA_GRACEFUL_TIMEOUT"])
        assert seconds(service["stop_grace_period"]) > timeout


def test_healthcheck_paths_routed(api):
    """The path each API health check requests is a route of the app."""
    routed = {route.path for route in falcon.inspect.inspect_app(api.app).routes}
    for name in ("api", "asgi"):
        test = services()[name]["healthcheck"]["test"]
        assert test[:4] == ["CMD", "python", "-m", "damba.probe"]
        assert test[-1] == "/readyz"
        assert test[-1] in routed


def test_report_folder_mounted():
    """The report service mounts ./reports-out where `damba report` writes."""
    workdir = [
        args for keyword, args in dockerfile_instructions() if keyword == "WORKDIR"
    ][-1]
    report = services()["report"]
    assert "./reports-out:" + workdir + "/reports-out" in report["volumes"]
    user, _, group = report["user"].partition(":")
    assert user.isdigit()
    assert group.isdigit()


def test_compose_config_cli(tmp_path):
    """`docker compose config` accepts the file with every profile, where installed."""
    command = _compose_cli()
    if command is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed here")
    profiles = [arg for profile in PROFILES for arg in ("--profile", profile)]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    checked = subprocess.run(
        [*command, "-f", str(COMPOSE_FILE), *profiles, "config", "-q"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stderr

    # The same check on a broken copy fails, so the check above can fail too.
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(
        COMPOSE_FILE.read_text().replace(
            "condition: service_healthy", "condition: when_ready"
        )
    )
    rejected = subprocess.run(
        [
            *command,
            "-f",
            str(broken),
            "--project-directory",
            str(REPO),
            *profiles,
            "config",
            "-q",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rejected.returncode != 0


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, timeout=60
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


# ------------------------------------------------------------ the Dockerfile


def test_dockerfile_base_pinned():
    """The image starts from a slim Python image pinned to a patch release."""
    bases = [args for keyword, args in dockerfile_instructions() if keyword == "FROM"]
    assert len(bases) == 1
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", bases[0]), bases[0]


def test_dockerfile_non_root():
    """The image runs as a numeric, non-root user, the one the manifests name."""
    users = [args for keyword, args in dockerfile_instructions() if keyword == "USER"]
    user, _, group = users[-1].partition(":")
    assert user.isdigit()
    assert int(user) != 0
    assert group.isdigit()
    assert int(group) != 0


def test_dockerfile_installs_pinned():
    """The image installs requirements.txt, where each line pins an exact version."""
    runs = " ".join(
        args for keyword, args in dockerfile_instructions() if keyword == "RUN"
    )
    assert "pip install -r requirements.txt" in runs
    assert re.search(r"setuptools==\d", runs)
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[A-Za-z0-9_.]+", line), line


def test_dockerfile_command():
    """The image's command is the compose API's command, on the exposed port."""
    instructions = dockerfile_instructions()
    command = [args for keyword, args in instructions if keyword == "CMD"][-1]
    assert command == '["damba", "serve"]'
    assert services()["api"]["command"] == ["damba", "serve"]
    exposed = [args for keyword, args in instructions if keyword == "EXPOSE"]
    environment_lines = " ".join(
        args for keyword, args in instructions if keyword == "ENV"
    )
    assert exposed == ["8000"]
    assert "DAMBA_PORT=8000" in environment_lines
    assert "DAMBA_HOST=0.0.0.0" in environment_lines


def test_dockerignore_excludes_local_state():
    """The build context leaves out the virtualenv, git, local settings and outputs."""
    ignored = {
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".env", "reports-out", "tests"} <= ignored


# ------------------------------------------------------------ native runs


def healthcheck_argv(test: list[str]) -> list[str]:
    """Turn a compose health-check test into a command line for this machine."""
    kind, *rest = test
    if kind == "CMD":
        return resolve(rest)
    if kind == "CMD-SHELL":
        return ["sh", "-c", rest[0]]
    raise AssertionError(f"unsupported health-check kind {kind!r}")


def passes(argv: list[str], env: dict[str, str] | None = None):
    def check() -> bool:
        return (
            subprocess.run(argv, env=env, capture_output=True, timeout=30).returncode
            == 0
        )

    return check


def service_env(
    service: dict, redis_url: str, key_prefix: str, port: int
) -> dict[str, str]:
    """Return a service's compose environment, aimed at the test Redis and port."""
    env = damba_env(redis_url, key_prefix, port)
    for name, value in environment(service).items():
        env.setdefault(name, value)
    return env


def start_service(
    name: str,
    redis_url: str,
    key_prefix: str,
    log_dir: Path,
    command: list[str] | None = None,
) -> tuple[ServerProcess, dict[str, str]]:
    """Run an API service's command natively and wait for its health check to pass."""
    service = services()[name]
    env = service_env(service, redis_url, key_prefix, free_port())
    process = ServerProcess(name, command or service["command"], env, log_dir)
    check = passes(healthcheck_argv(service["healthcheck"]["test"]), env)
    try:
        wait_until(check, f"the health check of {name}", process=process)
    except BaseException:
        process.stop()
        raise
    return process, env


def test_native_redis(tmp_path):
    """The redis command writes an append-only file and passes its health check."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed on this machine")
    service = services()["redis"]
    port = free_port()
    # The container's command, on a free loopback port, in a folder of the test.
    command = service["command"] + [
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(tmp_path),
    ]
    test = service["healthcheck"]["test"]
    check = [test[0], test[1].replace("redis-cli", f"redis-cli -p {port}")]
    with ServerProcess(
        "redis", command, {"PATH": "/usr/bin:/bin"}, tmp_path
    ) as process:
        wait_until(
            passes(healthcheck_argv(check)), "the redis health check", process=process
        )
        answer = subprocess.run(
            ["redis-cli", "-p", str(port), "config", "get", "appendonly"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert answer.stdout.split() == ["appendonly", "yes"]
        subprocess.run(
            ["redis-cli", "-p", str(port), "set", "k", "v"],
            timeout=30,
            capture_output=True,
            check=True,
        )
        aof = list(tmp_path.glob("appendonly*"))
        assert aof, "no append-only file was written"


def test_native_api(redis_url, key_prefix, tmp_path):
    """The api command serves the API and passes its health check."""
    process, env = start_service("api", redis_url, key_prefix, tmp_path)
    with process:
        base = f"http://127.0.0.1:{env['DAMBA_PORT']}"
        registered = requests.post(base + "/api/v1/user/addme", timeout=10)
        assert registered.status_code == 201
        assert requests.get(base + "/healthz", timeout=10).json()["status"] == "alive"
    assert process.popen.returncode == 0, process.output()


def test_native_asgi(redis_url, key_prefix, tmp_path):
    """The asgi command serves the API under uvicorn and passes its health check."""
    process, env = start_service("asgi", redis_url, key_prefix, tmp_path)
    with process:
        base = f"http://127.0.0.1:{env['DAMBA_PORT']}"
        assert requests.post(base + "/api/v1/user/addme", timeout=10).status_code == 201
    assert process.popen.returncode == 0, process.output()


def test_native_locust(redis_url, key_prefix, tmp_path):
    """The Locust master passes its health check and a worker joins it."""
    found = services()
    api, api_env = start_service("api", redis_url, key_prefix, tmp_path)
    web_port, master_port = free_port(), free_port()
    api_url = f"http://127.0.0.1:{api_env['DAMBA_PORT']}"

    # The compose commands, aimed at loopback ports instead of compose names.
    master_command = [
        api_url if arg == "http://api:8000" else arg
        for arg in found["locust-master"]["command"]
    ]
    master_command += [
        "--web-host",
        "127.0.0.1",
        "--web-port",
        str(web_port),
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        str(master_port),
    ]
    worker_command = [
        "127.0.0.1" if arg == "locust-master" else arg
        for arg in found["locust-worker"]["command"]
    ]
    worker_command += ["--master-port", str(master_port)]
    test = [
        str(web_port) if arg == "8089" else arg
        for arg in found["locust-master"]["healthcheck"]["test"]
    ]

    env = damba_env(redis_url, key_prefix, 0)
    with api, ServerProcess("locust-master", master_command, env, tmp_path) as master:
        wait_until(
            passes(healthcheck_argv(test), env),
            "the Locust master health check",
            process=master,
        )
        with ServerProcess("locust-worker", worker_command, env, tmp_path) as worker:
            stats_url = f"http://127.0.0.1:{web_port}/stats/requests"
            wait_until(
                lambda: (
                    len(requests.get(stats_url, timeout=5).json().get("workers", []))
                    >= 1
                ),
                "the Locust worker to join the master",
                process=worker,
            )


def test_native_report(store, settings, redis_url, key_prefix, tmp_path, api):
    """The report command writes a report of a stream with activity and exits 0."""
    store.open_stream(commands.init(__version__, settings.limits))
    key = api.simulate_post("/api/v1/user/addme").json["uid"]
    rid = api.simulate_post(f"/api/v1/addroute/uid/{key}/steps/2").json["rid"]
    api.simulate_post(f"/api/v1/join/uid/{key}/route/{rid}")
    for _ in range(3):
        api.simulate_post(f"/api/v1/step/uid/{key}/route/{rid}")

    service = services()["report"]
    env = service_env(service, redis_url, key_prefix, 0)
    finished = subprocess.run(
        resolve(service["command"]),
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    written = [path for path in (tmp_path / "reports-out").rglob("*") if path.is_file()]
    assert written, "the report wrote nothing under ./reports-out"


def test_probe_fails_when_down(tmp_path):
    """The health-check command exits 1 when nothing listens on the port."""
    argv = healthcheck_argv(services()["api"]["healthcheck"]["test"])
    env = {"PATH": "/usr/bin:/bin", "DAMBA_PORT": str(free_port())}
    assert (
        subprocess.run(argv, env=env, capture_output=True, timeout=30).returncode == 1
    )
