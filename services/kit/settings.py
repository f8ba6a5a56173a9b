"""Configuration from environment variables, read and validated in one place.

Every service builds one frozen settings object at start-up with an :class:`EnvReader`.
A bad value raises :class:`SettingsError` whose message names the variable, so the
process can stop with one clear line instead of a stack trace.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class SettingsError(ValueError):
    """A configuration value is missing or invalid; the message names the variable."""


# Images per model call when a service's MAX_BATCH is unset (a service may pass its own).
DEFAULT_MAX_BATCH = 8


@dataclass(frozen=True)
class EnvReader:
    """Reads typed values from an environment mapping under a service prefix.

    ``EnvReader("CLASSIFIER", environ).integer("WORKERS", 2)`` reads ``CLASSIFIER_WORKERS``.
    ``global_*`` readers take a stack-wide name without the prefix (e.g. ``MAX_BODY_MB``).
    """

    prefix: str
    environ: Mapping[str, str]

    @classmethod
    def from_os(cls, prefix: str) -> EnvReader:
        return cls(prefix, dict(os.environ))

    def name(self, key: str) -> str:
        return f"{self.prefix}_{key}" if self.prefix else key

    def raw(self, key: str) -> str | None:
        value = self.environ.get(self.name(key))
        return None if value is None or value.strip() == "" else value.strip()

    def string(self, key: str, default: str, choices: tuple[str, ...] | None = None) -> str:
        value = self.raw(key) or default
        if choices is not None and value not in choices:
            raise SettingsError(f"{self.name(key)}={value!r} is not one of: {', '.join(choices)}")
        return value

    def integer(self, key: str, default: int, minimum: int, maximum: int) -> int:
        return int(self._number(key, default, minimum, maximum, int))

    def number(self, key: str, default: float, minimum: float, maximum: float) -> float:
        return float(self._number(key, default, minimum, maximum, float))

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw(key)
        if value is None:
            return default
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise SettingsError(f"{self.name(key)}={value!r} is not a boolean (use 1/0, true/false)")

    def path(self, key: str, default: Path | None, must_exist: bool = True) -> Path:
        value = self.raw(key)
        if value is None and default is None:
            raise SettingsError(f"{self.name(key)} is required")
        path = Path(value) if value is not None else default
        assert path is not None
        if must_exist and not path.is_file():
            raise SettingsError(f"{self.name(key)}={str(path)!r}: no such file")
        return path

    def _number(self, key, default, minimum, maximum, kind):
        value = self.raw(key)
        if value is None:
            return default
        try:
            parsed = kind(value)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise SettingsError(f"{self.name(key)}={value!r} is not {what}") from None
        if not minimum <= parsed <= maximum:
            raise SettingsError(
                f"{self.name(key)}={value!r} is out of range [{minimum}, {maximum}]"
            )
        return parsed

    def unprefixed(self) -> EnvReader:
        """A reader for stack-wide variables that every service shares."""
        return EnvReader("", self.environ)


SERVED_BY_MODES = ("replica", "host", "off")


def served_by_mode(env: EnvReader) -> str:
    """How much ``X-Served-By`` tells (stack-wide ``SERVED_BY``): ``replica`` (host:port/pid,
    the default), ``host`` (the hostname only) or ``off`` (no header)."""
    return env.unprefixed().string("SERVED_BY", "replica", SERVED_BY_MODES)


def max_body_mb(env: EnvReader) -> float:
    """The stack-wide upload limit in MB (``MAX_BODY_MB``), read in this one place by nginx's
    renderer, the model services and the web page, so all of them agree."""
    return env.unprefixed().number("MAX_BODY_MB", 20.0, 0.001, 1024.0)


@dataclass(frozen=True)
class ServingSettings:
    """Knobs of the serving core shared by every model service.

    ``max_body_bytes`` comes from the stack-wide ``MAX_BODY_MB`` so nginx and the services
    always agree on the upload limit.
    """

    max_body_bytes: int
    max_pixels: int
    max_images: int
    torch_threads: int
    device: str
    half: bool
    bf16: bool
    channels_last: bool
    compile: bool  # torch.compile (inductor, frozen weights); graphs built at warm-up
    fold_batchnorm: bool  # batch norms folded into their convolutions
    max_batch: int
    batch_wait_ms: float
    log_level: str
    served_by: str
    http_threads: int
    queue_limit: int  # requests admitted per worker; 0 = from queue_budget_ms (admission)
    queue_budget_ms: float
    draft_decode: bool  # JPEGs at the smallest DCT scale the model's input needs

    @classmethod
    def from_env(
        cls, env: EnvReader, workers: int, default_max_batch: int = DEFAULT_MAX_BATCH
    ) -> ServingSettings:
        """``default_max_batch``: the service's ``MAX_BATCH`` when unset (the largest batch
        that still pays on a CPU; GPU deployments set theirs)."""
        cores = available_cpus()
        settings = cls(
            max_body_bytes=int(max_body_mb(env) * 1024 * 1024),
            max_pixels=int(env.number("MAX_MEGAPIXELS", 40.0, 0.001, 1000.0) * 1_000_000),
            max_images=env.integer("MAX_IMAGES", 16, 1, 256),
            torch_threads=env.integer("TORCH_THREADS", max(1, cores // workers), 1, 256),
            device=env.string("DEVICE", "auto"),
            half=env.boolean("FP16", False),
            bf16=env.boolean("BF16", False),
            channels_last=env.boolean("CHANNELS_LAST", True),
            compile=env.boolean("COMPILE", False),
            fold_batchnorm=env.boolean("FOLD_BATCHNORM", True),
            max_batch=env.integer("MAX_BATCH", default_max_batch, 1, 256),
            batch_wait_ms=env.number("BATCH_WAIT_MS", 2.0, 0.0, 1000.0),
            log_level=env.string("LOG_LEVEL", "info", ("debug", "info", "warning", "error")),
            served_by=served_by_mode(env),
            http_threads=read_http_threads(env, MODEL_HTTP_THREADS),
            queue_limit=env.integer("QUEUE_LIMIT", 0, 0, 4096),
            queue_budget_ms=env.number("QUEUE_BUDGET_MS", 500.0, 1.0, 600_000.0),
            draft_decode=env.boolean("DRAFT_DECODE", True),
        )
        if workers * settings.torch_threads > cores:
            raise SettingsError(
                f"{env.name('WORKERS')}={workers} x {env.name('TORCH_THREADS')}="
                f"{settings.torch_threads} exceeds the {cores} CPU(s) available: "
                "lower one of them"
            )
        return settings


def available_cpus(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup CPU quota (a
    container's ``cpus:`` limit), so thread counts follow the limit, not the host."""
    cpus = len(os.sched_getaffinity(0))
    quota = cgroup_cpu_quota(cgroup_root)
    return min(cpus, max(1, math.ceil(quota))) if quota is not None else cpus


def cgroup_cpu_quota(root: Path) -> float | None:
    """The CPU quota in CPUs from cgroup v2 (``cpu.max``) or v1 (``cpu.cfs_quota_us``);
    None when there is no limit or no cgroup file."""
    try:
        quota, period = (root / "cpu.max").read_text().split()
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota_us <= 0 else quota_us / period_us


def read_workers(env: EnvReader) -> int:
    """Number of gunicorn worker processes (one model copy each)."""
    return env.integer("WORKERS", 1, 1, 64)


# Model services: enough request threads that every admitted request has one, with two
# to spare for refusing the rest at once (services/kit/admission.py).
MODEL_HTTP_THREADS = 16


def read_http_threads(env: EnvReader, default: int) -> int:
    """Request threads per gunicorn worker (gthread)."""
    return env.integer("HTTP_THREADS", default, 1, 256)
