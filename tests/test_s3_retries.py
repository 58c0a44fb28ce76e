"""S3 transient failures recovered by retries: a flaky proxy (tests/flaky_proxy.py) in front
of the test S3 server answers some requests with HTTP 503 or drops their connections, and
the ingest still ends with every object; failures that outlast the retries are one sentence.

botocore's standard retries (5 attempts) take requests that fail; a body cut short, which
botocore reads after the call has returned, is requested again by the loader itself.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gan.data.s3 import S3Settings, fetch, make_client
from gan.errors import GanError
from tests.flaky_proxy import FlakyProxy, listing, object_get
from tests.s3_server import S3
from tests.test_s3 import cli, codes, load, one_sentence, pngs

pytest_plugins = ["tests.s3_server"]

N = 12  # objects per test


@pytest.fixture
def flaky(s3: S3) -> Iterator[FlakyProxy]:
    """A flaky proxy in front of the test server's counting proxy, which the code reaches."""
    proxy = FlakyProxy(s3.endpoint)
    s3.monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    s3.bucket("flaky")
    s3.put_many("flaky", "imgs", pngs(N))
    try:
        yield proxy
    finally:
        proxy.close()


def every_object_arrived(s3: S3, data) -> None:
    assert codes(data.images) == list(range(N))
    assert {f"imgs/img-{i:04d}.png" for i in range(N)} <= set(s3.proxy.object_gets("flaky"))


def test_the_client_retries_five_times_in_standard_mode(monkeypatch):
    for name in ("AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    retries = make_client(S3Settings()).meta.config.retries
    assert retries == {"mode": "standard", "total_max_attempts": 5}


def test_slow_down_answers_are_retried_and_every_object_arrives(s3, flaky):
    flaky.fail(1, "slowdown", only=listing)
    flaky.fail(4, "slowdown", only=object_get)  # spread over the workers: one retry each
    data = load("folder", "s3://flaky/imgs/", s3_workers=8)
    every_object_arrived(s3, data)
    assert flaky.failed == 5


@pytest.mark.parametrize("way", ["drop", "headers", "body"])
def test_connections_dropped_mid_request_or_mid_response_are_retried(s3, flaky, way):
    flaky.fail(2, way, only=listing)
    flaky.fail(4, way, only=object_get)
    data = load("folder", "s3://flaky/imgs/", s3_workers=8)
    every_object_arrived(s3, data)
    assert flaky.failed == 6


def test_a_body_cut_short_is_fetched_again_without_the_cache(s3, flaky):
    flaky.fail(4, "body", only=object_get)
    data = load("mri", "s3://flaky/imgs/", (8, 8), no_cache=True, s3_workers=8)
    assert codes(data.images) == list(range(N))
    assert flaky.failed == 4


@pytest.mark.parametrize(
    ("way", "phrase"),
    [("unavailable", "S3 answered ServiceUnavailable"), ("drop", "stopped answering")],
)
def test_failures_that_outlast_the_retries_are_one_sentence(s3, flaky, tmp_path, way, phrase):
    flaky.fail(1000, way)
    code, stderr = cli(
        "train", "--dataset", "folder", "--data", "s3://flaky/imgs/", "--model", "mlp",
        "--max-steps", "1", "--device", "cpu", "--workdir", tmp_path / "work",
    )  # fmt: skip
    one_sentence(code, stderr, phrase, "run again")
    assert flaky.failed == 5  # the listing, 5 times: botocore's attempts, then the error
    assert not (tmp_path / "work" / "checkpoints").exists()


def test_aws_max_attempts_from_the_environment_is_honoured(s3, flaky):
    s3.monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    flaky.fail(1000, "unavailable")
    with pytest.raises(GanError, match="S3 answered ServiceUnavailable"):
        fetch("s3://flaky/imgs/", (".png",), S3Settings(cache_dir=s3.tmp / "cache"))
    assert flaky.failed == 2
