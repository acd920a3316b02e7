"""Protobuf field numbers of the Kubernetes 1.32 API messages that typed clients send us.

Why this exists: kubectl 1.32 creates objects with `application/vnd.kubernetes.protobuf` bodies
(KUBECTL-COMPAT.md §0.2, §2.6).  Everything about a field except its wire *number* is already in the
OpenAPI definitions we load (`schema.py`): its JSON name, JSON type, `$ref` of nested messages, `format:
byte`, map-ness.  So this module keeps only the numbers, as our own compact table, keyed by OpenAPI
definition name.  The numbers are facts of the wire format collected from the upstream `protobuf:"..."`
struct tags of k8s.io/api and k8s.io/apimachinery; no upstream proto text is copied here.

Table syntax, one message per entry (lines that start with spaces continue the entry above)::

    [<package>]                     OpenAPI definition prefix, e.g. io.k8s.api.apps.v1
    <Message>: <n> <jsonName>, ...  message <package>.<Message> and its fields

A field entry is ``<number> <jsonName>`` with optional markers:

* ``*``  the Go field is a pointer (or otherwise keeps an explicit zero): a ``0``, ``false`` or ``""``
  present on the wire was set on purpose and is kept (``replicas: 0``).  Go writes every non-pointer
  scalar even when zero, so zeros of unmarked fields are dropped, as JSON ``omitempty`` would.
* ``^<Message>``  instead of a name: an embedded Go struct that JSON inlines (``json:",inline"``) but
  protobuf nests as its own message, e.g. ``Volume`` carries ``VolumeSource`` as field 2.  Its fields
  are merged into the parent object.  A bare name means the same package.
* ``@duration``  the JSON value is a Go duration string but the wire carries ``metav1.Duration``
  (the OpenAPI definitions inline it as a plain string, so the schema cannot tell us).

Time, MicroTime, IntOrString, Quantity, RawExtension and FieldsV1 need no entries: the decoder
recognises them by their OpenAPI definition name.  Fields added after 1.32 are left out on purpose:
unknown field numbers are skipped, as the real API server does.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One protobuf field of a message: where its value goes in the JSON object."""

    number: int
    name: str  # JSON field name; "" for an inline embedded message
    keep_zero: bool = False
    inline: str | None = None  # definition name of the embedded message whose fields are inlined
    duration: bool = False


_ENTRY = re.compile(r"^(\d+) (\^?[A-Za-z][\w.]*)(\*?)(@duration)?$")


@functools.cache
def message_fields() -> dict[str, dict[int, FieldSpec]]:
    """The table, parsed once: definition name -> field number -> spec."""
    messages: dict[str, dict[int, FieldSpec]] = {}
    package = ""
    current: dict[int, FieldSpec] | None = None
    for raw_line in _TABLE.splitlines():
        if not raw_line.strip():
            continue
        if raw_line.startswith("["):
            package = raw_line.strip("[] ")
            current = None
            continue
        body = raw_line
        if not raw_line.startswith(" "):
            message, _, body = raw_line.partition(":")
            current = messages.setdefault(f"{package}.{message.strip()}", {})
        if current is None:  # pragma: no cover - guarded by test_table_is_well_formed
            raise ValueError(f"continuation line without a message: {raw_line!r}")
        for item in filter(None, (part.strip() for part in body.split(","))):
            match = _ENTRY.match(item)
            if match is None:  # pragma: no cover - guarded by test_table_is_well_formed
                raise ValueError(f"bad field entry {item!r}")
            number, name, star, duration = int(match[1]), match[2], match[3], match[4]
            if name.startswith("^"):
                target = name[1:] if "." in name else f"{package}.{name[1:]}"
                current[number] = FieldSpec(number, "", inline=target)
            else:
                current[number] = FieldSpec(number, name, keep_zero=bool(star), duration=bool(duration))
    return messages


_TABLE = """
[io.k8s.api.apps.v1]
Deployment: 1 metadata, 2 spec, 3 status
DeploymentCondition: 1 type, 2 status, 6 lastUpdateTime, 7 lastTransitionTime, 4 reason, 5 message
DeploymentSpec: 1 replicas*, 2 selector, 3 template, 4 strategy, 5 minReadySeconds,
    6 revisionHistoryLimit*, 7 paused, 9 progressDeadlineSeconds*
DeploymentStatus: 1 observedGeneration, 2 replicas, 3 updatedReplicas, 7 readyReplicas,
    4 availableReplicas, 5 unavailableReplicas, 6 conditions, 8 collisionCount*
DeploymentStrategy: 1 type, 2 rollingUpdate
RollingUpdateDeployment: 1 maxUnavailable*, 2 maxSurge*
DaemonSet: 1 metadata, 2 spec, 3 status
DaemonSetCondition: 1 type, 2 status, 3 lastTransitionTime, 4 reason, 5 message
DaemonSetSpec: 1 selector, 2 template, 3 updateStrategy, 4 minReadySeconds, 6 revisionHistoryLimit*
DaemonSetStatus: 1 currentNumberScheduled, 2 numberMisscheduled, 3 desiredNumberScheduled,
    4 numberReady, 5 observedGeneration, 6 updatedNumberScheduled, 7 numberAvailable,
    8 numberUnavailable, 9 collisionCount*, 10 conditions
DaemonSetUpdateStrategy: 1 type, 2 rollingUpdate
ReplicaSet: 1 metadata, 2 spec, 3 status
ReplicaSetCondition: 1 type, 2 status, 3 lastTransitionTime, 4 reason, 5 message
ReplicaSetSpec: 1 replicas*, 4 minReadySeconds, 2 selector, 3 template
ReplicaSetStatus: 1 replicas, 2 fullyLabeledReplicas, 4 readyReplicas, 5 availableReplicas,
    3 observedGeneration, 6 conditions
RollingUpdateDaemonSet: 1 maxUnavailable*, 2 maxSurge*
RollingUpdateStatefulSetStrategy: 1 partition*, 2 maxUnavailable*
StatefulSet: 1 metadata, 2 spec, 3 status
StatefulSetCondition: 1 type, 2 status, 3 lastTransitionTime, 4 reason, 5 message
StatefulSetOrdinals: 1 start
StatefulSetPersistentVolumeClaimRetentionPolicy: 1 whenDeleted, 2 whenScaled
StatefulSetSpec: 1 replicas*, 2 selector, 3 template, 4 volumeClaimTemplates, 5 serviceName,
    6 podManagementPolicy, 7 updateStrategy, 8 revisionHistoryLimit*, 9 minReadySeconds,
    10 persistentVolumeClaimRetentionPolicy, 11 ordinals
StatefulSetStatus: 1 observedGeneration, 2 replicas, 3 readyReplicas, 4 currentReplicas,
    5 updatedReplicas, 6 currentRevision, 7 updateRevision, 9 collisionCount*, 10 conditions,
    11 availableReplicas
StatefulSetUpdateStrategy: 1 type, 2 rollingUpdate
ControllerRevision: 1 metadata, 2 data, 3 revision

[io.k8s.api.core.v1]
Volume: 1 name, 2 ^VolumeSource
VolumeSource: 1 hostPath, 2 emptyDir, 3 gcePersistentDisk, 4 awsElasticBlockStore, 5 gitRepo, 6 secret,
    7 nfs, 8 iscsi, 9 glusterfs, 10 persistentVolumeClaim, 11 rbd, 12 flexVolume, 13 cinder, 14 cephfs,
    15 flocker, 16 downwardAPI, 17 fc, 18 azureFile, 19 configMap, 20 vsphereVolume, 21 quobyte,
    22 azureDisk, 23 photonPersistentDisk, 26 projected, 24 portworxVolume, 25 scaleIO, 27 storageos,
    28 csi, 29 ephemeral, 30 image
PersistentVolumeClaimVolumeSource: 1 claimName, 2 readOnly
PersistentVolumeClaim: 1 metadata, 2 spec, 3 status
PersistentVolumeClaimSpec: 1 accessModes, 4 selector, 2 resources, 3 volumeName, 5 storageClassName*,
    6 volumeMode*, 7 dataSource, 8 dataSourceRef, 9 volumeAttributesClassName*
TypedObjectReference: 1 apiGroup*, 2 kind, 3 name, 4 namespace*
ModifyVolumeStatus: 1 targetVolumeAttributesClassName, 2 status
PersistentVolumeClaimCondition: 1 type, 2 status, 3 lastProbeTime, 4 lastTransitionTime, 5 reason,
    6 message
PersistentVolumeClaimStatus: 1 phase, 2 accessModes, 3 capacity, 4 conditions, 5 allocatedResources,
    7 allocatedResourceStatuses, 8 currentVolumeAttributesClassName*, 9 modifyVolumeStatus
HostPathVolumeSource: 1 path, 2 type*
EmptyDirVolumeSource: 1 medium, 2 sizeLimit
GlusterfsVolumeSource: 1 endpoints, 2 path, 3 readOnly
RBDVolumeSource: 1 monitors, 2 image, 3 fsType, 4 pool, 5 user, 6 keyring, 7 secretRef, 8 readOnly
CinderVolumeSource: 1 volumeID, 2 fsType, 3 readOnly, 4 secretRef
CephFSVolumeSource: 1 monitors, 2 path, 3 user, 4 secretFile, 5 secretRef, 6 readOnly
SecretReference: 1 name, 2 namespace
FlockerVolumeSource: 1 datasetName, 2 datasetUUID
GCEPersistentDiskVolumeSource: 1 pdName, 2 fsType, 3 partition, 4 readOnly
QuobyteVolumeSource: 1 registry, 2 volume, 3 readOnly, 4 user, 5 group, 6 tenant
FlexVolumeSource: 1 driver, 2 fsType, 3 secretRef, 4 readOnly, 5 options
AWSElasticBlockStoreVolumeSource: 1 volumeID, 2 fsType, 3 partition, 4 readOnly
GitRepoVolumeSource: 1 repository, 2 revision, 3 directory
SecretVolumeSource: 1 secretName, 2 items, 3 defaultMode*, 4 optional*
SecretProjection: 1 ^LocalObjectReference, 2 items, 4 optional*
NFSVolumeSource: 1 server, 2 path, 3 readOnly
ISCSIVolumeSource: 1 targetPortal, 2 iqn, 3 lun, 4 iscsiInterface, 5 fsType, 6 readOnly, 7 portals,
    8 chapAuthDiscovery, 11 chapAuthSession, 10 secretRef, 12 initiatorName*
FCVolumeSource: 1 targetWWNs, 2 lun*, 3 fsType, 4 readOnly, 5 wwids
AzureFileVolumeSource: 1 secretName, 2 shareName, 3 readOnly
VsphereVirtualDiskVolumeSource: 1 volumePath, 2 fsType, 3 storagePolicyName, 4 storagePolicyID
PhotonPersistentDiskVolumeSource: 1 pdID, 2 fsType
AzureDiskVolumeSource: 1 diskName, 2 diskURI, 3 cachingMode*, 4 fsType*, 5 readOnly*, 6 kind*
PortworxVolumeSource: 1 volumeID, 2 fsType, 3 readOnly
ScaleIOVolumeSource: 1 gateway, 2 system, 3 secretRef, 4 sslEnabled, 5 protectionDomain, 6 storagePool,
    7 storageMode, 8 volumeName, 9 fsType, 10 readOnly
StorageOSVolumeSource: 1 volumeName, 2 volumeNamespace, 3 fsType, 4 readOnly, 5 secretRef
ConfigMapVolumeSource: 1 ^LocalObjectReference, 2 items, 3 defaultMode*, 4 optional*
ConfigMapProjection: 1 ^LocalObjectReference, 2 items, 4 optional*
ServiceAccountTokenProjection: 1 audience, 2 expirationSeconds*, 3 path
ClusterTrustBundleProjection: 1 name*, 2 signerName*, 3 labelSelector, 5 optional*, 4 path
ProjectedVolumeSource: 1 sources, 2 defaultMode*
VolumeProjection: 1 secret, 2 downwardAPI, 3 configMap, 4 serviceAccountToken, 5 clusterTrustBundle
KeyToPath: 1 key, 2 path, 3 mode*
CSIVolumeSource: 1 driver, 2 readOnly*, 3 fsType*, 4 volumeAttributes, 5 nodePublishSecretRef
EphemeralVolumeSource: 1 volumeClaimTemplate
PersistentVolumeClaimTemplate: 1 metadata, 2 spec
ContainerPort: 1 name, 2 hostPort, 3 containerPort, 4 protocol, 5 hostIP
VolumeMount: 1 name, 2 readOnly, 7 recursiveReadOnly*, 3 mountPath, 4 subPath, 5 mountPropagation*,
    6 subPathExpr
VolumeDevice: 1 name, 2 devicePath
EnvVar: 1 name, 2 value, 3 valueFrom
EnvVarSource: 1 fieldRef, 2 resourceFieldRef, 3 configMapKeyRef, 4 secretKeyRef
ObjectFieldSelector: 1 apiVersion, 2 fieldPath
ResourceFieldSelector: 1 containerName, 2 resource, 3 divisor
ConfigMapKeySelector: 1 ^LocalObjectReference, 2 key, 3 optional*
SecretKeySelector: 1 ^LocalObjectReference, 2 key, 3 optional*
EnvFromSource: 1 prefix, 2 configMapRef, 3 secretRef
ConfigMapEnvSource: 1 ^LocalObjectReference, 2 optional*
SecretEnvSource: 1 ^LocalObjectReference, 2 optional*
HTTPHeader: 1 name, 2 value
HTTPGetAction: 1 path, 2 port, 3 host, 4 scheme, 5 httpHeaders
TCPSocketAction: 1 port, 2 host
GRPCAction: 1 port, 2 service*
ExecAction: 1 command
SleepAction: 1 seconds
Probe: 1 ^ProbeHandler, 2 initialDelaySeconds, 3 timeoutSeconds, 4 periodSeconds, 5 successThreshold,
    6 failureThreshold, 7 terminationGracePeriodSeconds*
ContainerResizePolicy: 1 resourceName, 2 restartPolicy
Capabilities: 1 add, 2 drop
ResourceRequirements: 1 limits, 2 requests, 3 claims
VolumeResourceRequirements: 1 limits, 2 requests
ResourceClaim: 1 name, 2 request
ResourceStatus: 1 name, 2 resources
ResourceHealth: 1 resourceID, 2 health
Container: 1 name, 2 image, 3 command, 4 args, 5 workingDir, 6 ports, 19 envFrom, 7 env, 8 resources,
    23 resizePolicy, 24 restartPolicy*, 9 volumeMounts, 21 volumeDevices, 10 livenessProbe,
    11 readinessProbe, 22 startupProbe, 12 lifecycle, 13 terminationMessagePath,
    20 terminationMessagePolicy, 14 imagePullPolicy, 15 securityContext, 16 stdin, 17 stdinOnce,
    18 tty
ProbeHandler: 1 exec, 2 httpGet, 3 tcpSocket, 4 grpc
LifecycleHandler: 1 exec, 2 httpGet, 3 tcpSocket, 4 sleep
Lifecycle: 1 postStart, 2 preStop
ContainerStateWaiting: 1 reason, 2 message
ContainerStateRunning: 1 startedAt
ContainerStateTerminated: 1 exitCode, 2 signal, 3 reason, 4 message, 5 startedAt, 6 finishedAt,
    7 containerID
ContainerState: 1 waiting, 2 running, 3 terminated
ContainerStatus: 1 name, 2 state, 3 lastState, 4 ready, 5 restartCount, 6 image, 7 imageID,
    8 containerID, 9 started*, 10 allocatedResources, 11 resources, 12 volumeMounts, 13 user,
    14 allocatedResourcesStatus
ContainerUser: 1 linux
LinuxContainerUser: 1 uid, 2 gid, 3 supplementalGroups
PodCondition: 1 type, 2 status, 3 lastProbeTime, 4 lastTransitionTime, 5 reason, 6 message
VolumeMountStatus: 1 name, 2 mountPath, 3 readOnly, 4 recursiveReadOnly*
NodeSelector: 1 nodeSelectorTerms
NodeSelectorTerm: 1 matchExpressions, 2 matchFields
NodeSelectorRequirement: 1 key, 2 operator, 3 values
TopologySelectorTerm: 1 matchLabelExpressions
TopologySelectorLabelRequirement: 1 key, 2 values
Affinity: 1 nodeAffinity, 2 podAffinity, 3 podAntiAffinity
PodAffinity: 1 requiredDuringSchedulingIgnoredDuringExecution,
    2 preferredDuringSchedulingIgnoredDuringExecution
PodAntiAffinity: 1 requiredDuringSchedulingIgnoredDuringExecution,
    2 preferredDuringSchedulingIgnoredDuringExecution
WeightedPodAffinityTerm: 1 weight, 2 podAffinityTerm
PodAffinityTerm: 1 labelSelector, 2 namespaces, 3 topologyKey, 4 namespaceSelector, 5 matchLabelKeys,
    6 mismatchLabelKeys
NodeAffinity: 1 requiredDuringSchedulingIgnoredDuringExecution,
    2 preferredDuringSchedulingIgnoredDuringExecution
PreferredSchedulingTerm: 1 weight, 2 preference
Taint: 1 key, 2 value, 3 effect, 4 timeAdded
Toleration: 1 key, 2 operator, 3 value, 4 effect, 5 tolerationSeconds*
PodReadinessGate: 1 conditionType
PodSpec: 1 volumes, 20 initContainers, 2 containers, 34 ephemeralContainers, 3 restartPolicy,
    4 terminationGracePeriodSeconds*, 5 activeDeadlineSeconds*, 6 dnsPolicy, 7 nodeSelector,
    8 serviceAccountName, 9 serviceAccount, 21 automountServiceAccountToken*, 10 nodeName,
    11 hostNetwork, 12 hostPID, 13 hostIPC, 27 shareProcessNamespace*, 14 securityContext,
    15 imagePullSecrets, 16 hostname, 17 subdomain, 18 affinity, 19 schedulerName, 22 tolerations,
    23 hostAliases, 24 priorityClassName, 25 priority*, 26 dnsConfig, 28 readinessGates,
    29 runtimeClassName*, 30 enableServiceLinks*, 31 preemptionPolicy*, 32 overhead,
    33 topologySpreadConstraints, 35 setHostnameAsFQDN*, 36 os, 37 hostUsers*, 38 schedulingGates,
    39 resourceClaims, 40 resources
PodResourceClaim: 1 name, 3 resourceClaimName*, 4 resourceClaimTemplateName*
PodResourceClaimStatus: 1 name, 2 resourceClaimName*
PodOS: 1 name
PodSchedulingGate: 1 name
TopologySpreadConstraint: 1 maxSkew, 2 topologyKey, 3 whenUnsatisfiable, 4 labelSelector,
    5 minDomains*, 6 nodeAffinityPolicy*, 7 nodeTaintsPolicy*, 8 matchLabelKeys
HostAlias: 1 ip, 2 hostnames
PodSecurityContext: 1 seLinuxOptions, 8 windowsOptions, 2 runAsUser*, 6 runAsGroup*, 3 runAsNonRoot*,
    4 supplementalGroups, 12 supplementalGroupsPolicy*, 5 fsGroup*, 7 sysctls, 9 fsGroupChangePolicy*,
    10 seccompProfile, 11 appArmorProfile, 13 seLinuxChangePolicy*
SeccompProfile: 1 type, 2 localhostProfile*
AppArmorProfile: 1 type, 2 localhostProfile*
PodDNSConfig: 1 nameservers, 2 searches, 3 options
PodDNSConfigOption: 1 name, 2 value*
PodIP: 1 ip
HostIP: 1 ip
EphemeralContainerCommon: 1 name, 2 image, 3 command, 4 args, 5 workingDir, 6 ports, 19 envFrom, 7 env,
    8 resources, 23 resizePolicy, 24 restartPolicy*, 9 volumeMounts, 21 volumeDevices,
    10 livenessProbe, 11 readinessProbe, 22 startupProbe, 12 lifecycle, 13 terminationMessagePath,
    20 terminationMessagePolicy, 14 imagePullPolicy, 15 securityContext, 16 stdin, 17 stdinOnce,
    18 tty
EphemeralContainer: 1 ^EphemeralContainerCommon, 2 targetContainerName
PodStatus: 1 phase, 2 conditions, 3 message, 4 reason, 11 nominatedNodeName, 5 hostIP, 16 hostIPs,
    6 podIP, 12 podIPs, 7 startTime, 10 initContainerStatuses, 8 containerStatuses, 9 qosClass,
    13 ephemeralContainerStatuses, 14 resize, 15 resourceClaimStatuses
Pod: 1 metadata, 2 spec, 3 status
PodTemplateSpec: 1 metadata, 2 spec
PodTemplate: 1 metadata, 2 template
ReplicationControllerSpec: 1 replicas*, 4 minReadySeconds, 2 selector, 3 template
ReplicationControllerStatus: 1 replicas, 2 fullyLabeledReplicas, 4 readyReplicas, 5 availableReplicas,
    3 observedGeneration, 6 conditions
ReplicationControllerCondition: 1 type, 2 status, 3 lastTransitionTime, 4 reason, 5 message
SessionAffinityConfig: 1 clientIP
ClientIPConfig: 1 timeoutSeconds*
ServiceStatus: 1 loadBalancer, 2 conditions
LoadBalancerStatus: 1 ingress
LoadBalancerIngress: 1 ip, 2 hostname, 3 ipMode*, 4 ports
ServiceSpec: 1 ports, 2 selector, 3 clusterIP, 18 clusterIPs, 4 type, 5 externalIPs, 7 sessionAffinity,
    8 loadBalancerIP, 9 loadBalancerSourceRanges, 10 externalName, 11 externalTrafficPolicy,
    12 healthCheckNodePort, 13 publishNotReadyAddresses, 14 sessionAffinityConfig, 19 ipFamilies,
    17 ipFamilyPolicy*, 20 allocateLoadBalancerNodePorts*, 21 loadBalancerClass*,
    22 internalTrafficPolicy*, 23 trafficDistribution*
ServicePort: 1 name, 2 protocol, 6 appProtocol*, 3 port, 4 targetPort, 5 nodePort
Service: 1 metadata, 2 spec, 3 status
ServiceAccount: 1 metadata, 2 secrets, 3 imagePullSecrets, 4 automountServiceAccountToken*
Endpoints: 1 metadata, 2 subsets
EndpointSubset: 1 addresses, 2 notReadyAddresses, 3 ports
EndpointAddress: 1 ip, 3 hostname, 4 nodeName*, 2 targetRef
EndpointPort: 1 name, 2 port, 3 protocol, 4 appProtocol*
NodeSystemInfo: 1 machineID, 2 systemUUID, 3 bootID, 4 kernelVersion, 5 osImage,
    6 containerRuntimeVersion, 7 kubeletVersion, 8 kubeProxyVersion, 9 operatingSystem,
    10 architecture
NodeSpec: 1 podCIDR, 7 podCIDRs, 3 providerID, 4 unschedulable, 5 taints, 6 configSource, 2 externalID
NodeConfigSource: 2 configMap
ConfigMapNodeConfigSource: 1 namespace, 2 name, 3 uid, 4 resourceVersion, 5 kubeletConfigKey
DaemonEndpoint: 1 Port
NodeDaemonEndpoints: 1 kubeletEndpoint
NodeRuntimeHandlerFeatures: 1 recursiveReadOnlyMounts*, 2 userNamespaces*
NodeRuntimeHandler: 1 name, 2 features
NodeFeatures: 1 supplementalGroupsPolicy*
NodeConfigStatus: 1 assigned, 2 active, 3 lastKnownGood, 4 error
NodeStatus: 1 capacity, 2 allocatable, 3 phase, 4 conditions, 5 addresses, 6 daemonEndpoints,
    7 nodeInfo, 8 images, 9 volumesInUse, 10 volumesAttached, 11 config, 12 runtimeHandlers,
    13 features
AttachedVolume: 1 name, 2 devicePath
ContainerImage: 1 names, 2 sizeBytes
NodeCondition: 1 type, 2 status, 3 lastHeartbeatTime, 4 lastTransitionTime, 5 reason, 6 message
NodeAddress: 1 type, 2 address
Node: 1 metadata, 2 spec, 3 status
NamespaceSpec: 1 finalizers
NamespaceStatus: 1 phase, 2 conditions
NamespaceCondition: 1 type, 2 status, 4 lastTransitionTime, 5 reason, 6 message
Namespace: 1 metadata, 2 spec, 3 status
Binding: 1 metadata, 2 target
ObjectReference: 1 kind, 2 namespace, 3 name, 4 uid, 5 apiVersion, 6 resourceVersion, 7 fieldPath
LocalObjectReference: 1 name
TypedLocalObjectReference: 1 apiGroup*, 2 kind, 3 name
EventSource: 1 component, 2 host
Event: 1 metadata, 2 involvedObject, 3 reason, 4 message, 5 source, 6 firstTimestamp, 7 lastTimestamp,
    8 count, 9 type, 10 eventTime, 11 series, 12 action, 13 related, 14 reportingComponent,
    15 reportingInstance
EventSeries: 1 count, 2 lastObservedTime
LimitRangeItem: 1 type, 2 max, 3 min, 4 default, 5 defaultRequest, 6 maxLimitRequestRatio
LimitRangeSpec: 1 limits
LimitRange: 1 metadata, 2 spec
ResourceQuotaSpec: 1 hard, 2 scopes, 3 scopeSelector
ScopeSelector: 1 matchExpressions
ScopedResourceSelectorRequirement: 1 scopeName, 2 operator, 3 values
ResourceQuotaStatus: 1 hard, 2 used
ResourceQuota: 1 metadata, 2 spec, 3 status
Secret: 1 metadata, 5 immutable*, 2 data, 4 stringData, 3 type
ConfigMap: 1 metadata, 4 immutable*, 2 data, 3 binaryData
ComponentCondition: 1 type, 2 status, 3 message, 4 error
ComponentStatus: 1 metadata, 2 conditions
DownwardAPIVolumeSource: 1 items, 2 defaultMode*
DownwardAPIVolumeFile: 1 path, 2 fieldRef, 3 resourceFieldRef, 4 mode*
DownwardAPIProjection: 1 items
SecurityContext: 1 capabilities, 2 privileged*, 3 seLinuxOptions, 10 windowsOptions, 4 runAsUser*,
    8 runAsGroup*, 5 runAsNonRoot*, 6 readOnlyRootFilesystem*, 7 allowPrivilegeEscalation*,
    9 procMount*, 11 seccompProfile, 12 appArmorProfile
SELinuxOptions: 1 user, 2 role, 3 type, 4 level
WindowsSecurityContextOptions: 1 gmsaCredentialSpecName*, 2 gmsaCredentialSpec*, 3 runAsUserName*,
    4 hostProcess*
Sysctl: 1 name, 2 value
PortStatus: 1 port, 2 protocol, 3 error*
ImageVolumeSource: 1 reference, 2 pullPolicy

[io.k8s.apimachinery.pkg.apis.meta.v1]
ListMeta: 1 selfLink, 2 resourceVersion, 3 continue, 4 remainingItemCount*
ObjectMeta: 1 name, 2 generateName, 3 namespace, 4 selfLink, 5 uid, 6 resourceVersion, 7 generation,
    8 creationTimestamp, 9 deletionTimestamp, 10 deletionGracePeriodSeconds*, 11 labels,
    12 annotations, 13 ownerReferences, 14 finalizers, 17 managedFields
OwnerReference: 5 apiVersion, 1 kind, 3 name, 4 uid, 6 controller*, 7 blockOwnerDeletion*
DeleteOptions: 1 gracePeriodSeconds*, 2 preconditions, 3 orphanDependents*, 4 propagationPolicy*,
    5 dryRun
Preconditions: 1 uid*, 2 resourceVersion*
Status: 1 metadata, 2 status, 3 message, 4 reason, 5 details, 6 code
StatusDetails: 1 name, 2 group, 3 kind, 6 uid, 4 causes, 5 retryAfterSeconds
StatusCause: 1 reason, 2 message, 3 field
LabelSelector: 1 matchLabels, 2 matchExpressions
LabelSelectorRequirement: 1 key, 2 operator, 3 values
FieldSelectorRequirement: 1 key, 2 operator, 3 values
ManagedFieldsEntry: 1 manager, 2 operation, 3 apiVersion, 4 time, 6 fieldsType, 7 fieldsV1,
    8 subresource
Condition: 1 type, 2 status, 3 observedGeneration, 4 lastTransitionTime, 5 reason, 6 message

[io.k8s.api.rbac.v1]
PolicyRule: 1 verbs, 2 apiGroups, 3 resources, 4 resourceNames, 5 nonResourceURLs
Subject: 1 kind, 2 apiGroup, 3 name, 4 namespace
RoleRef: 1 apiGroup, 2 kind, 3 name
Role: 1 metadata, 2 rules
RoleBinding: 1 metadata, 2 subjects, 3 roleRef
ClusterRole: 1 metadata, 2 rules, 3 aggregationRule
AggregationRule: 1 clusterRoleSelectors
ClusterRoleBinding: 1 metadata, 2 subjects, 3 roleRef

[io.k8s.api.batch.v1]
Job: 1 metadata, 2 spec, 3 status
PodFailurePolicyOnExitCodesRequirement: 1 containerName*, 2 operator, 3 values
PodFailurePolicyOnPodConditionsPattern: 1 type, 2 status
PodFailurePolicyRule: 1 action, 2 onExitCodes, 3 onPodConditions
PodFailurePolicy: 1 rules
JobSpec: 1 parallelism*, 2 completions*, 3 activeDeadlineSeconds*, 11 podFailurePolicy,
    16 successPolicy, 7 backoffLimit*, 12 backoffLimitPerIndex*, 13 maxFailedIndexes*, 4 selector,
    5 manualSelector*, 6 template, 8 ttlSecondsAfterFinished*, 9 completionMode*, 10 suspend*,
    14 podReplacementPolicy*, 15 managedBy*
JobStatus: 1 conditions, 2 startTime, 3 completionTime, 4 active, 5 succeeded, 6 failed,
    11 terminating*, 7 completedIndexes, 10 failedIndexes*, 8 uncountedTerminatedPods, 9 ready*
UncountedTerminatedPods: 1 succeeded, 2 failed
JobCondition: 1 type, 2 status, 3 lastProbeTime, 4 lastTransitionTime, 5 reason, 6 message
JobTemplateSpec: 1 metadata, 2 spec
CronJob: 1 metadata, 2 spec, 3 status
CronJobSpec: 1 schedule, 8 timeZone*, 2 startingDeadlineSeconds*, 3 concurrencyPolicy, 4 suspend*,
    5 jobTemplate, 6 successfulJobsHistoryLimit*, 7 failedJobsHistoryLimit*
CronJobStatus: 1 active, 4 lastScheduleTime, 5 lastSuccessfulTime
SuccessPolicy: 1 rules
SuccessPolicyRule: 1 succeededIndexes*, 2 succeededCount*

[io.k8s.api.policy.v1]
PodDisruptionBudgetSpec: 1 minAvailable*, 2 selector, 3 maxUnavailable*, 4 unhealthyPodEvictionPolicy*
PodDisruptionBudgetStatus: 1 observedGeneration, 2 disruptedPods, 3 disruptionsAllowed,
    4 currentHealthy, 5 desiredHealthy, 6 expectedPods, 7 conditions
PodDisruptionBudget: 1 metadata, 2 spec, 3 status
Eviction: 1 metadata, 2 deleteOptions

[io.k8s.api.scheduling.v1]
PriorityClass: 1 metadata, 2 value, 3 globalDefault, 4 description, 5 preemptionPolicy*

[io.k8s.api.networking.v1]
Ingress: 1 metadata, 2 spec, 3 status
IngressSpec: 4 ingressClassName*, 1 defaultBackend, 2 tls, 3 rules
IngressTLS: 1 hosts, 2 secretName
IngressStatus: 1 loadBalancer
IngressLoadBalancerStatus: 1 ingress
IngressLoadBalancerIngress: 1 ip, 2 hostname, 4 ports
IngressPortStatus: 1 port, 2 protocol, 3 error*
IngressRule: 1 host, 2 ^IngressRuleValue
IngressRuleValue: 1 http
HTTPIngressRuleValue: 1 paths
HTTPIngressPath: 1 path, 3 pathType*, 2 backend
IngressBackend: 4 service, 3 resource
IngressServiceBackend: 1 name, 2 port
ServiceBackendPort: 1 name, 2 number

[io.k8s.api.autoscaling.v1]
CrossVersionObjectReference: 1 kind, 2 name, 3 apiVersion
HorizontalPodAutoscalerSpec: 1 scaleTargetRef, 2 minReplicas*, 3 maxReplicas,
    4 targetCPUUtilizationPercentage*
HorizontalPodAutoscalerStatus: 1 observedGeneration*, 2 lastScaleTime, 3 currentReplicas,
    4 desiredReplicas, 5 currentCPUUtilizationPercentage*
HorizontalPodAutoscaler: 1 metadata, 2 spec, 3 status
Scale: 1 metadata, 2 spec, 3 status
ScaleSpec: 1 replicas
ScaleStatus: 1 replicas, 2 selector

[io.k8s.api.authorization.v1]
SubjectAccessReview: 1 metadata, 2 spec, 3 status
SelfSubjectAccessReview: 1 metadata, 2 spec, 3 status
LocalSubjectAccessReview: 1 metadata, 2 spec, 3 status
ResourceAttributes: 1 namespace, 2 verb, 3 group, 4 version, 5 resource, 6 subresource, 7 name,
    8 fieldSelector, 9 labelSelector
LabelSelectorAttributes: 1 rawSelector, 2 requirements
FieldSelectorAttributes: 1 rawSelector, 2 requirements
NonResourceAttributes: 1 path, 2 verb
SubjectAccessReviewSpec: 1 resourceAttributes, 2 nonResourceAttributes, 3 user, 4 groups, 5 extra, 6 uid
SelfSubjectAccessReviewSpec: 1 resourceAttributes, 2 nonResourceAttributes
SubjectAccessReviewStatus: 1 allowed, 4 denied, 2 reason, 3 evaluationError

[io.k8s.api.authentication.v1]
TokenReview: 1 metadata, 2 spec, 3 status
TokenReviewSpec: 1 token, 2 audiences
TokenReviewStatus: 1 authenticated, 2 user, 4 audiences, 3 error
UserInfo: 1 username, 2 uid, 3 groups, 4 extra
TokenRequest: 1 metadata, 2 spec, 3 status
TokenRequestSpec: 1 audiences, 4 expirationSeconds*, 3 boundObjectRef
TokenRequestStatus: 1 token, 2 expirationTimestamp
BoundObjectReference: 1 kind, 2 apiVersion, 3 name, 4 uid
SelfSubjectReview: 1 metadata, 2 status
SelfSubjectReviewStatus: 1 userInfo
"""
