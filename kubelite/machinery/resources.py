"""The resource registry: every built-in resource the API serves, as discovery describes it.

One `Resource` per served group/version/plural.  Resources served in several versions (HPAs in
autoscaling/v1 and v2) share one storage location (`storage_key_prefix`) and are converted at the
edge; everything else is stored in the version it is served in.  Names, short names, categories and
verbs are upstream's, because kubectl's discovery cache, `kubectl get all` and tab completion
depend on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
READ_VERBS = ("get", "list", "watch")
CREATE_ONLY = ("create",)


@dataclass(frozen=True)
class Subresource:
    name: str
    kind: str
    verbs: tuple[str, ...]
    group: str | None = None  # None: the parent's group/version
    version: str | None = None


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[Subresource, ...] = ()
    storage_group: str | None = None  # share storage with another group's resource (None: own group)
    stored: bool = True  # False for virtual resources (reviews, metrics) that are computed, not stored
    preferred: bool = True  # the preferred version of its group
    storage_version: str | None = None  # stored as another version/group's resource (converted at the edge)

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def storage_key_prefix(self) -> str:
        """`/registry/<group>/<plural>/`: shared by all versions of the resource."""
        group = self.storage_group if self.storage_group is not None else self.group
        return f"/registry/{group or 'core'}/{self.plural}/"

    def key(self, namespace: str | None, name: str) -> str:
        if self.namespaced:
            return f"{self.storage_key_prefix}{namespace}/{name}"
        return f"{self.storage_key_prefix}{name}"

    def collection_prefix(self, namespace: str | None) -> str:
        if self.namespaced and namespace:
            return f"{self.storage_key_prefix}{namespace}/"
        return self.storage_key_prefix

    def subresource(self, name: str) -> Subresource | None:
        return next((s for s in self.subresources if s.name == name), None)

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


STATUS = Subresource("status", "", ("get", "patch", "update"))
SCALE = Subresource("scale", "Scale", ("get", "patch", "update"), "autoscaling", "v1")


def _status(kind: str) -> Subresource:
    return Subresource("status", kind, ("get", "patch", "update"))


def _r(
    group: str,
    version: str,
    kind: str,
    plural: str,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
    status: bool = False,
    scale: bool = False,
    extra: tuple[Subresource, ...] = (),
    verbs: tuple[str, ...] = ALL_VERBS,
    **kwargs: object,
) -> Resource:
    subs: list[Subresource] = []
    if scale:
        subs.append(SCALE)
    if status:
        subs.append(_status(kind))
    subs.extend(extra)
    return Resource(
        group,
        version,
        kind,
        plural,
        namespaced,
        short,
        categories,
        verbs,
        tuple(sorted(subs, key=lambda s: s.name)),
        **kwargs,  # type: ignore[arg-type]
    )


ALL = ("all",)
CORE: list[Resource] = [
    _r("", "v1", "Binding", "bindings", verbs=CREATE_ONLY, stored=False),
    _r("", "v1", "ComponentStatus", "componentstatuses", False, ("cs",), verbs=("get", "list"), stored=False),
    _r("", "v1", "ConfigMap", "configmaps", short=("cm",)),
    _r("", "v1", "Endpoints", "endpoints", short=("ep",)),
    _r("", "v1", "Event", "events", short=("ev",)),
    _r("", "v1", "LimitRange", "limitranges", short=("limits",)),
    _r(
        "",
        "v1",
        "Namespace",
        "namespaces",
        False,
        ("ns",),
        status=True,
        extra=(Subresource("finalize", "Namespace", ("update",)),),
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
    ),
    _r(
        "",
        "v1",
        "Node",
        "nodes",
        False,
        ("no",),
        status=True,
        extra=(Subresource("proxy", "NodeProxyOptions", ("create", "delete", "get", "patch", "update")),),
    ),
    _r("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", short=("pvc",), status=True),
    _r("", "v1", "PersistentVolume", "persistentvolumes", False, ("pv",), status=True),
    _r(
        "",
        "v1",
        "Pod",
        "pods",
        short=("po",),
        categories=ALL,
        status=True,
        extra=(
            Subresource("attach", "PodAttachOptions", ("create", "get")),
            Subresource("binding", "Binding", ("create",)),
            Subresource("ephemeralcontainers", "Pod", ("get", "patch", "update")),
            Subresource("eviction", "Eviction", ("create",), "policy", "v1"),
            Subresource("exec", "PodExecOptions", ("create", "get")),
            Subresource("log", "Pod", ("get",)),
            Subresource("portforward", "PodPortForwardOptions", ("create", "get")),
            Subresource("proxy", "PodProxyOptions", ("create", "delete", "get", "patch", "update")),
        ),
    ),
    _r("", "v1", "PodTemplate", "podtemplates"),
    _r(
        "",
        "v1",
        "ReplicationController",
        "replicationcontrollers",
        short=("rc",),
        categories=ALL,
        status=True,
        scale=True,
    ),
    _r("", "v1", "ResourceQuota", "resourcequotas", short=("quota",), status=True),
    _r("", "v1", "Secret", "secrets"),
    _r(
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        short=("sa",),
        extra=(Subresource("token", "TokenRequest", ("create",), "authentication.k8s.io", "v1"),),
    ),
    _r(
        "",
        "v1",
        "Service",
        "services",
        short=("svc",),
        categories=ALL,
        status=True,
        extra=(Subresource("proxy", "ServiceProxyOptions", ("create", "delete", "get", "patch", "update")),),
    ),
]

APPS: list[Resource] = [
    _r("apps", "v1", "ControllerRevision", "controllerrevisions"),
    _r("apps", "v1", "DaemonSet", "daemonsets", short=("ds",), categories=ALL, status=True),
    _r("apps", "v1", "Deployment", "deployments", short=("deploy",), categories=ALL, status=True, scale=True),
    _r("apps", "v1", "ReplicaSet", "replicasets", short=("rs",), categories=ALL, status=True, scale=True),
    _r("apps", "v1", "StatefulSet", "statefulsets", short=("sts",), categories=ALL, status=True, scale=True),
]

OTHERS: list[Resource] = [
    _r("batch", "v1", "CronJob", "cronjobs", short=("cj",), categories=ALL, status=True),
    _r("batch", "v1", "Job", "jobs", categories=ALL, status=True),
    _r(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        short=("hpa",),
        categories=ALL,
        status=True,
    ),
    _r(
        "autoscaling",
        "v1",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        short=("hpa",),
        categories=ALL,
        status=True,
        preferred=False,
        storage_version="v2",
    ),
    _r("coordination.k8s.io", "v1", "Lease", "leases"),
    _r("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
    _r("events.k8s.io", "v1", "Event", "events", short=("ev",), storage_group="", storage_version="v1"),
    _r("networking.k8s.io", "v1", "Ingress", "ingresses", short=("ing",), status=True),
    _r("networking.k8s.io", "v1", "IngressClass", "ingressclasses", False),
    _r("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", short=("netpol",)),
    _r("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", short=("pdb",), status=True),
    _r("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    _r("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    _r("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
    _r("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    _r("storage.k8s.io", "v1", "CSIDriver", "csidrivers", False),
    _r("storage.k8s.io", "v1", "CSINode", "csinodes", False),
    _r("storage.k8s.io", "v1", "CSIStorageCapacity", "csistoragecapacities"),
    _r("storage.k8s.io", "v1", "StorageClass", "storageclasses", False, ("sc",)),
    _r("storage.k8s.io", "v1", "VolumeAttachment", "volumeattachments", False, status=True),
    _r("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", False, ("pc",)),
    _r("node.k8s.io", "v1", "RuntimeClass", "runtimeclasses", False),
    _r(
        "certificates.k8s.io",
        "v1",
        "CertificateSigningRequest",
        "certificatesigningrequests",
        False,
        ("csr",),
        status=True,
        extra=(Subresource("approval", "CertificateSigningRequest", ("get", "patch", "update")),),
    ),
    _r(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        False,
        ("crd", "crds"),
        status=True,
    ),
    _r("apiregistration.k8s.io", "v1", "APIService", "apiservices", False, status=True),
    _r(
        "admissionregistration.k8s.io",
        "v1",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        False,
    ),
    _r(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        False,
    ),
    _r(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicy",
        "validatingadmissionpolicies",
        False,
        status=True,
    ),
    _r(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicyBinding",
        "validatingadmissionpolicybindings",
        False,
    ),
    _r(
        "authentication.k8s.io",
        "v1",
        "SelfSubjectReview",
        "selfsubjectreviews",
        False,
        verbs=CREATE_ONLY,
        stored=False,
    ),
    _r("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", False, verbs=CREATE_ONLY, stored=False),
    _r(
        "authorization.k8s.io",
        "v1",
        "LocalSubjectAccessReview",
        "localsubjectaccessreviews",
        verbs=CREATE_ONLY,
        stored=False,
    ),
    _r(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        False,
        verbs=CREATE_ONLY,
        stored=False,
    ),
    _r(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectRulesReview",
        "selfsubjectrulesreviews",
        False,
        verbs=CREATE_ONLY,
        stored=False,
    ),
    _r(
        "authorization.k8s.io",
        "v1",
        "SubjectAccessReview",
        "subjectaccessreviews",
        False,
        verbs=CREATE_ONLY,
        stored=False,
    ),
    _r("metrics.k8s.io", "v1beta1", "NodeMetrics", "nodes", False, verbs=READ_VERBS, stored=False),
    _r("metrics.k8s.io", "v1beta1", "PodMetrics", "pods", True, verbs=READ_VERBS, stored=False),
]

BUILTIN_RESOURCES: tuple[Resource, ...] = tuple(CORE + APPS + OTHERS)

# Group order as upstream's discovery lists them (kubectl prints api-versions sorted anyway).
GROUP_ORDER = (
    "",
    "apiregistration.k8s.io",
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "node.k8s.io",
    "discovery.k8s.io",
    "metrics.k8s.io",
)


@dataclass
class ResourceRegistry:
    """Lookup of served resources by (group, version, plural) and by kind.  CRDs add entries at run time."""

    resources: list[Resource] = field(default_factory=lambda: list(BUILTIN_RESOURCES))

    def __post_init__(self) -> None:
        self._reindex()

    def _reindex(self) -> None:
        self._by_path = {(r.group, r.version, r.plural): r for r in self.resources}
        self._by_kind = {(r.group, r.version, r.kind): r for r in self.resources}

    def get(self, group: str, version: str, plural: str) -> Resource | None:
        return self._by_path.get((group, version, plural))

    def by_kind(self, group: str, version: str, kind: str) -> Resource | None:
        return self._by_kind.get((group, version, kind))

    def add(self, resource: Resource) -> None:
        self.resources = [
            r
            for r in self.resources
            if (r.group, r.version, r.plural) != (resource.group, resource.version, resource.plural)
        ]
        self.resources.append(resource)
        self._reindex()

    def remove_group_resource(self, group: str, plural: str) -> None:
        self.resources = [r for r in self.resources if (r.group, r.plural) != (group, plural)]
        self._reindex()

    def groups(self) -> list[tuple[str, list[str]]]:
        """(group, versions in preference order) in discovery order."""
        versions: dict[str, list[str]] = {}
        preferred: dict[str, str] = {}
        for r in self.resources:
            vs = versions.setdefault(r.group, [])
            if r.version not in vs:
                vs.append(r.version)
            if r.preferred:
                preferred.setdefault(r.group, r.version)

        def order(group: str) -> tuple[int, str]:
            return (GROUP_ORDER.index(group) if group in GROUP_ORDER else len(GROUP_ORDER), group)

        out = []
        for group in sorted(versions, key=order):
            vs = versions[group]
            first = preferred.get(group, vs[0])
            out.append((group, [first] + [v for v in vs if v != first]))
        return out

    def in_group_version(self, group: str, version: str) -> list[Resource]:
        return [r for r in self.resources if r.group == group and r.version == version]
