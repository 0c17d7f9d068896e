"""The SDK's typed results stay in step with the live API's ``/openapi.json``: each model has the
properties of its schema component, no more and no fewer, and the same ones always present."""
from __future__ import annotations

import httpx
import pytest

import samo.models as models

#: Each SDK model and the component of the API's schema it reads.
COMPONENTS = {
    models.Job: "JobOut", models.JobError: "JobError", models.ModelInfo: "ModelInfo",
    models.Batch: "BatchOut", models.BatchCounts: "BatchCounts", models.RowError: "RowError",
    models.ResultLine: "BatchResultLine", models.EmotionResult: "EmotionResult", models.Valence: "Valence",
    models.SentenceEmotion: "SentenceEmotion", models.Timeline: "Timeline", models.TimelineBucket: "TimelineBucket",
    models.TopEmotion: "TopEmotion", models.ValenceSplit: "ValenceSplit", models.Insights: "Insights",
    models.InsightsPeriod: "InsightsPeriod", models.LabelChange: "LabelChange", models.Correlations: "Correlations",
    models.TagCorrelation: "TagCorrelation", models.Endpoint: "EndpointOut", models.Delivery: "DeliveryOut",
    models.Attempt: "AttemptOut", models.SigningSecret: "SigningSecretOut", models.Token: "TokenResponse",
    models.Problem: "ProblemDetails", models.Erasure: "ErasureOut",
}
#: Models of no component: an SSE event (not JSON of the API), the base class.
UNDESCRIBED = {models.Event, models.Model}


@pytest.fixture(scope="module")
def schemas(live_server):
    return httpx.get(f"{live_server}/openapi.json", timeout=30).json()["components"]["schemas"]


def wire_names(model) -> tuple[set[str], set[str]]:
    """Every field's name in JSON (its alias) and those that must be present."""
    fields = model.model_fields.items()
    return ({field.alias or name for name, field in fields},
            {field.alias or name for name, field in fields if field.is_required()})


@pytest.mark.parametrize("model", list(COMPONENTS), ids=lambda model: model.__name__)
def test_a_model_has_its_components_fields_and_required_ones(schemas, model):
    name = COMPONENTS[model]
    component = schemas[name]
    names, required = wire_names(model)
    assert names == set(component["properties"])
    assert required == set(component.get("required", []))


def test_every_model_is_compared():
    described = {value for value in vars(models).values()
                 if isinstance(value, type) and issubclass(value, models.Model)}
    assert described - UNDESCRIBED == set(COMPONENTS)
