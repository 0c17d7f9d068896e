"""The rendered Kubernetes manifests are valid: core kinds against the Kubernetes API schemas
(kubernetes-validate ships them), KEDA's kinds against models generated from KEDA's CRDs."""
from __future__ import annotations

import copy

import kubernetes_validate
import pytest
from cloudcoil.models.keda import v1alpha1 as keda

from tests.support.kubernetes import OVERLAYS, by_kind, containers, pod_spec, render

#: The oldest Kubernetes release the manifests are meant for (autoscaling/v2, policy/v1, PSA labels).
KUBERNETES_VERSION = "1.29.0"
KEDA_KINDS = {"ScaledObject": keda.ScaledObject, "TriggerAuthentication": keda.TriggerAuthentication}


def validate_keda(document: dict) -> None:
    """The CRD model accepts the document and keeps every field of it: an unknown field is an error."""
    model = KEDA_KINDS[document["kind"]].model_validate(document)
    kept = model.model_dump(by_alias=True, exclude_unset=True, mode="json")
    if kept != document:
        raise ValueError(f"{document['kind']} {document['metadata']['name']}: fields outside KEDA's schema")


def validate(document: dict) -> None:
    if document["apiVersion"].startswith("keda.sh/"):
        validate_keda(document)
    else:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request):
    return render(request.param)


def test_every_rendered_document_is_valid(rendered):
    kinds = {doc["kind"] for doc in rendered}
    assert {"Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "Job", "ConfigMap",
            "NetworkPolicy", "ScaledObject", "TriggerAuthentication"} <= kinds
    for document in rendered:
        validate(document)


@pytest.mark.parametrize("break_it", [
    lambda docs: by_kind(docs, "Deployment")["samo-api"]["spec"].update(replica=2),
    lambda docs: pod_spec(by_kind(docs, "Deployment")["samo-api"])["containers"][0].update(ports="5000"),
    lambda docs: by_kind(docs, "ScaledObject")["samo-worker-cpu"]["spec"].update(minReplicas=1),
    lambda docs: by_kind(docs, "ScaledObject")["samo-worker-cpu"]["spec"].pop("scaleTargetRef"),
], ids=["unknown-field", "wrong-type", "keda-unknown-field", "keda-missing-field"])
def test_the_validation_refuses_a_broken_document(break_it):
    documents = copy.deepcopy(render("cpu-only"))
    break_it(documents)
    with pytest.raises(Exception):  # noqa: B017, PT011 - each validator raises its own error type
        for document in documents:
            validate(document)


def test_every_container_runs_unprivileged_on_a_read_only_root(rendered):
    for name, workload in {**by_kind(rendered, "Deployment"), **by_kind(rendered, "Job")}.items():
        spec = pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["serviceAccountName"] == "samo", name
        volumes = {volume["name"]: volume for volume in spec["volumes"]}
        for container in containers(spec):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, (name, container["name"])
            assert context["allowPrivilegeEscalation"] is False, (name, container["name"])
            assert context["capabilities"]["drop"] == ["ALL"], (name, container["name"])
            mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], (name, container["name"])
            assert {"requests", "limits"} <= set(container["resources"]), (name, container["name"])
