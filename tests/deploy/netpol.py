"""NetworkPolicy egress, evaluated as a CNI that matches after DNAT does (Calico, Cilium): against
the destination pod's or endpoint's own address and port, never a Service's ClusterIP or port."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Pod:
    namespace: str
    labels: dict[str, str] = field(default_factory=dict)
    namespace_labels: dict[str, str] = field(default_factory=dict)

    def namespace_labelled(self) -> dict[str, str]:
        return {"kubernetes.io/metadata.name": self.namespace} | self.namespace_labels


@dataclass(frozen=True)
class Destination:
    """A pod (namespace and labels) or an address outside the pod network, and the port it listens on."""

    port: int
    pod: Pod | None = None
    ip: str | None = None


def selects(selector: dict | None, labels: dict[str, str]) -> bool:
    """A label selector (matchLabels, matchExpressions In/NotIn/Exists) against `labels`; {} selects all."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        if operator == "In":
            matched = key in labels and labels[key] in values
        elif operator == "NotIn":
            matched = key not in labels or labels[key] not in values
        else:
            matched = (key in labels) == (operator == "Exists")
        if not matched:
            return False
    return True


def _peer_matches(peer: dict, policy_namespace: str, other: Destination) -> bool:
    if "ipBlock" in peer:
        if other.ip is None:
            return False
        address = ipaddress.ip_address(other.ip)
        block = peer["ipBlock"]
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(excepted) for excepted in block.get("except", [])
        )
    if other.pod is None:
        return False
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], other.pod.namespace_labelled()):
            return False
    elif other.pod.namespace != policy_namespace:
        return False
    return selects(peer.get("podSelector"), other.pod.labels)


def _allowed(policies: list[dict], direction: str, subject: Pod, other: Destination) -> bool:
    """Whether the policies selecting `subject` let it connect to `other` (Egress) or let `other`
    connect to it on `other.port` (Ingress); none selecting it: allowed."""
    applying = [
        p
        for p in policies
        if p["metadata"]["namespace"] == subject.namespace
        and direction in p["spec"].get("policyTypes", [])
        and selects(p["spec"]["podSelector"], subject.labels)
    ]
    peers_key = "to" if direction == "Egress" else "from"
    for policy in applying:
        for rule in policy["spec"].get(direction.lower(), []):
            ports = rule.get("ports")
            if ports and not any(p.get("port") == other.port and p.get("protocol", "TCP") == "TCP" for p in ports):
                continue
            peers = rule.get(peers_key)
            if not peers or any(_peer_matches(peer, policy["metadata"]["namespace"], other) for peer in peers):
                return True
    return not applying


def egress_allowed(policies: list[dict], source: Pod, destination: Destination) -> bool:
    """Whether `source` may open a TCP connection to `destination` under `policies`."""
    return _allowed(policies, "Egress", source, destination)


def ingress_allowed(policies: list[dict], source: Pod, destination: Pod, port: int) -> bool:
    """Whether `destination` admits a TCP connection from `source` on `port` under `policies`."""
    return _allowed(policies, "Ingress", destination, Destination(port, pod=source))
