"""The registry of services answers every question the code used to ask by comparing names."""

from __future__ import annotations

import pytest

from pipeline import services
from pipeline.errors import InputError
from pipeline.net.providers import AimlApi
from pipeline.read.schema import manifest_schema
from pipeline.read.settings import RunSettings


def test_the_manifest_offers_exactly_the_registered_services():
    listed = manifest_schema()["properties"]["provider"]
    assert listed["enum"] == list(services.SERVICES)
    assert listed["default"] in services.SERVICES


def test_the_sandbox_is_free_keyless_embedded_and_resends_lost_submits():
    sandbox = services.service("sandbox")
    assert (sandbox.free, sandbox.needs_key, sandbox.embedded, sandbox.resend_uncertain) == (
        True,
        False,
        True,
        True,
    )


def test_the_paid_service_needs_its_key_and_never_resends_without_asking():
    paid = services.service("aimlapi")
    assert (paid.free, paid.needs_key, paid.embedded, paid.resend_uncertain) == (False, True, False, False)
    assert paid.key_env == "AIMLAPI_KEY" == RunSettings.from_section(None).account_list()[0].key_env
    assert paid.base_url == "https://api.aimlapi.com"


@pytest.mark.parametrize("name", list(services.SERVICES))
@pytest.mark.parametrize("endpoint", ["legacy", "universal"])
def test_each_service_builds_its_request_format_for_the_endpoint(name, endpoint):
    provider = services.service(name).provider(endpoint)
    assert isinstance(provider, AimlApi)
    assert provider.endpoint == endpoint


def test_an_unknown_service_names_the_known_ones():
    with pytest.raises(
        InputError, match="'runway' is not a service vidpipe knows; expected 'sandbox' or 'aimlapi'"
    ):
        services.service("runway")
