"""`make run`'s plan: what each STACK_ROLE starts on this host (no processes started)."""

from __future__ import annotations

import pytest

from scripts.run_stack import plan, programs, supervisor_config
from services.kit.settings import SettingsError


def test_all_runs_everything_behind_nginx():
    stack = plan({})
    assert stack.replicas == {"detector": [8201, 8202], "classifier": [8101, 8102], "web": [8003]}
    assert stack.upstreams["detector"] == ["127.0.0.1:8201", "127.0.0.1:8202"]
    text = supervisor_config(stack)
    assert "nginx.upstream_watch --listen=8080" in text
    assert "--service=detector=127.0.0.1:8201,127.0.0.1:8202" in text
    names = [program.name for program in programs(stack)]
    assert names == [
        "detector1",
        "detector2",
        "classifier1",
        "classifier2",
        "web1",
        "nginx",
        "ready",
    ]
    assert text.count("autorestart=true") == 6  # every server is restarted when it dies


def test_models_role_binds_for_other_hosts_and_runs_no_nginx():
    stack = plan({"STACK_ROLE": "models", "STACK_BIND_HOST": "0.0.0.0", "DETECTOR_REPLICAS": "1"})
    assert set(stack.replicas) == {"detector", "classifier"} and not stack.upstreams
    text = supervisor_config(stack)
    assert 'environment=DETECTOR_HOST="0.0.0.0",DETECTOR_PORT="8201"' in text
    assert "nginx" not in text
    assert "wait_ready - http://127.0.0.1:8201" in text  # probed on loopback


def test_edge_role_fronts_the_listed_model_hosts():
    stack = plan(
        {
            "STACK_ROLE": "edge",
            "NGINX_DETECTOR_UPSTREAM": "hostb:8002,hostc:8002",
            "NGINX_CLASSIFIER_UPSTREAM": "hostb:8001",
        }
    )
    assert set(stack.replicas) == {"web"}
    assert stack.upstreams["detector"] == ["hostb:8002", "hostc:8002"]
    assert "--service=classifier=hostb:8001" in supervisor_config(stack)


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"STACK_ROLE": "edge"}, "NGINX_DETECTOR_UPSTREAM"),
        ({"STACK_ROLE": "everything"}, "STACK_ROLE"),
    ],
)
def test_a_bad_plan_names_the_variable(environ, named):
    with pytest.raises(SettingsError, match=named):
        plan(environ)
