"""What the code location shows of its configuration: never the store's password.

The UI's views are read through Dagster's own GraphQL schema, against the code location
loaded in a code server process, as ``dagster dev`` loads it: the store resource's configured
values (the resource view) and the resolve job's default run config (the launchpad).
"""

from __future__ import annotations

import json
import typing
from pathlib import Path

import dagster as dg
import pytest
from dagster_graphql.test.utils import define_out_of_process_context, execute_dagster_graphql

import idr_pipeline.definitions
from idr_pipeline.defs.platform.resources import PipelineConfig, build_resources
from idr_pipeline.settings import IdrSettings, get_settings

PASSWORD = "s3cret-Pa55"
URL_WITH_PASSWORD = f"singlestoredb://idr:{PASSWORD}@127.0.0.1:3306/idr"

RESOURCE_VIEW = """
query ($selector: ResourceSelector!) {
  topLevelResourceDetailsOrError(resourceSelector: $selector) {
    __typename
    ... on ResourceDetails { name configuredValues { key value type } }
    ... on PythonError { message }
  }
}
"""

LAUNCHPAD_DEFAULTS = """
query ($selector: PipelineSelector!) {
  runConfigSchemaOrError(selector: $selector) {
    __typename
    ... on RunConfigSchema { rootDefaultYaml }
    ... on PythonError { message }
  }
}
"""


@pytest.fixture
def password_in_environment(idr_env: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("IDR_STORE_URL", URL_WITH_PASSWORD)
    get_settings.cache_clear()
    return URL_WITH_PASSWORD


def test_the_ui_shows_the_store_url_variable_never_the_password(password_in_environment):
    with (
        dg.instance_for_test() as instance,
        define_out_of_process_context(idr_pipeline.definitions.__file__, "defs", instance) as context,
    ):
        location = context.code_location_names[0]
        repository = {"repositoryLocationName": location, "repositoryName": "__repository__"}
        resource = execute_dagster_graphql(
            context, RESOURCE_VIEW, {"selector": {**repository, "resourceName": "store"}}
        ).data["topLevelResourceDetailsOrError"]
        launchpad = execute_dagster_graphql(
            context, LAUNCHPAD_DEFAULTS, {"selector": {**repository, "pipelineName": "resolve_job"}}
        ).data["runConfigSchemaOrError"]

    assert resource["__typename"] == "ResourceDetails", resource
    # The URL by its variable's name; the publish's rows per transaction, no secret, as it is.
    assert sorted(resource["configuredValues"], key=lambda v: v["key"]) == [
        {"key": "publish_commit_rows", "value": "5000", "type": "VALUE"},
        {"key": "publish_nice", "value": "10", "type": "VALUE"},
        {"key": "url", "value": "IDR_STORE_URL", "type": "ENV_VAR"},
    ]
    assert launchpad["__typename"] == "RunConfigSchema", launchpad
    assert "store" in launchpad["rootDefaultYaml"]
    assert PASSWORD not in json.dumps([resource, launchpad])


def test_the_store_url_is_read_from_the_environment_when_a_run_starts(password_in_environment):
    store = build_resources()["store"]
    assert PASSWORD not in repr(store)
    with dg.build_resources({"store": store}) as resources:
        assert resources.store.url == URL_WITH_PASSWORD
        assert resources.store.redacted_url() == "singlestoredb://idr:***@127.0.0.1:3306/idr"


def test_a_password_that_is_not_in_the_environment_is_refused(idr_env):
    settings = IdrSettings(store_url=URL_WITH_PASSWORD)
    with pytest.raises(ValueError, match="IDR_STORE_URL") as error:
        build_resources(settings)
    assert PASSWORD not in str(error.value)


def test_settings_never_print_the_store_url(password_in_environment):
    settings = get_settings()
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings.model_dump())
    assert settings.store_url.get_secret_value() == URL_WITH_PASSWORD


def test_pipeline_config_fields_are_settings_of_the_same_type():
    hints = typing.get_type_hints(PipelineConfig)
    settings_hints = typing.get_type_hints(IdrSettings)
    for name in PipelineConfig.model_fields:
        assert hints[name] == settings_hints[name], name


def test_pipeline_config_rejects_a_policy_the_settings_reject(idr_env, monkeypatch):
    monkeypatch.setenv("IDR_EMBED_POLICY", "sometimes")
    get_settings.cache_clear()
    with pytest.raises(ValueError, match="embed_policy"):
        get_settings()
