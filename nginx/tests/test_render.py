"""The rendered nginx config: valid for nginx itself, limits from the shared variable."""

from __future__ import annotations

import os
import socket
import subprocess

import pytest

from nginx.render import (
    NginxConfig,
    balancer_socket,
    main,
    remove_stale_balancer_socket,
    render,
)

UPSTREAMS = {
    "detector": ["127.0.0.1:9001", "127.0.0.1:9002"],
    "classifier": ["127.0.0.1:9003"],
    "web": ["127.0.0.1:9004"],
}


def nginx_test(tmp_path, text: str) -> subprocess.CompletedProcess:
    config = tmp_path / "nginx.conf"
    config.write_text(text)
    return subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-c", str(config), "-e", str(tmp_path / "e.log")],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_rendered_config_passes_nginx_t(tmp_path):
    text = render(
        NginxConfig(
            listen="127.0.0.1:18080",
            upstreams=UPSTREAMS,
            runtime_dir=str(tmp_path),
            error_log=str(tmp_path / "e.log"),
        )
    )
    done = nginx_test(tmp_path, text)
    assert done.returncode == 0, done.stderr
    assert "least_conn;" in text and "keepalive 32;" in text
    # Each replica twice: in its service's upstream and in the spill upstream, where a
    # refusal (503) never marks it failed.
    assert text.count("server 127.0.0.1:900") == 8
    assert text.count("max_fails=0;") == 4
    assert "non_idempotent" in text
    assert "error_page 503 = @detector_spill;" in text


def test_body_limit_follows_max_body_mb(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MAX_BODY_MB", "7.5")
    args = ["--runtime-dir", str(tmp_path), "--error-log", str(tmp_path / "e.log")]
    for name, servers in UPSTREAMS.items():
        args += ["--upstream", f"{name}={','.join(servers)}"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "client_max_body_size 7680k;" in text
    assert "limit of 7.5 MB" in text
    assert nginx_test(tmp_path, text).returncode == 0


def test_bad_max_body_mb_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("MAX_BODY_MB", "lots")
    with pytest.raises(SystemExit, match="MAX_BODY_MB='lots' is not a number"):
        main(["--runtime-dir", str(tmp_path)])


def test_every_service_needs_servers(tmp_path):
    with pytest.raises(ValueError, match="no servers for upstream"):
        render(NginxConfig(listen="1", upstreams={"web": ["a:1"]}, runtime_dir=str(tmp_path)))


def test_failover_tuning_comes_from_the_environment(tmp_path):
    from nginx.render import tuning_from_env

    tuning = tuning_from_env({"NGINX_READ_TIMEOUT_S": "12", "MAX_BODY_MB": "8"})
    assert {key: tuning[key] for key in ("max_body_mb", "read_timeout_s", "connect_timeout_s")} == {
        "max_body_mb": 8.0,
        "read_timeout_s": 12,
        "connect_timeout_s": 5,
    }
    text = render(NginxConfig(listen="1", upstreams=UPSTREAMS, runtime_dir=str(tmp_path), **tuning))
    assert (
        "proxy_read_timeout 12s;" in text
    )  # the balancer's, per replica and "client_max_body_size 8192k;" in text
    # No overall retry deadline: a request that waited out the read timeout is still retried.
    assert "proxy_next_upstream_timeout 0;" in text
    for bad in ({"NGINX_READ_TIMEOUT_S": "soon"}, {"NGINX_CONNECT_TIMEOUT_S": "0"}):
        with pytest.raises(SystemExit, match=next(iter(bad))):
            tuning_from_env(bad)


def test_abuse_limits_come_from_the_environment(tmp_path):
    from nginx.render import tuning_from_env

    tuning = tuning_from_env({"NGINX_CLIENT_CONNECTIONS": "7", "NGINX_BODY_TEMP_DIR": "/dev/shm/x"})
    text = render(NginxConfig(listen="1", upstreams=UPSTREAMS, runtime_dir=str(tmp_path), **tuning))
    assert "limit_conn per_client 7;" in text
    assert "client_body_temp_path /dev/shm/x;" in text
    assert "client_body_buffer_size 64k;" in text  # bodies are not pinned in memory
    assert "worker_connections 16384;" in text


def test_balancer_socket_is_short_and_reachable_whatever_the_runtime_dir():
    deep = "/tmp/" + "a-very-long-directory-name/" * 8
    path = balancer_socket(deep)
    assert len(path) < 100 and path.endswith(".sock")
    assert path == balancer_socket(deep) != balancer_socket("/tmp/other")


def test_a_stale_balancer_socket_is_removed_and_a_live_one_kept(tmp_path):
    path = balancer_socket(str(tmp_path))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(path)
        listener.listen(1)
        assert not remove_stale_balancer_socket(str(tmp_path))  # someone answers on it
        listener.close()
        assert remove_stale_balancer_socket(str(tmp_path))  # left by a killed nginx
        assert not os.path.exists(path)
    finally:
        listener.close()
        if os.path.exists(path):
            os.unlink(path)
